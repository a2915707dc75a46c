"""A real cluster for the tests: etcd, kube-apiserver, kube-controller-manager and the Tekton
controller, built by ``tests/cluster/build`` and started by the pytest plugin in
``tests.cluster.fixtures``. See README.md beside this file."""
