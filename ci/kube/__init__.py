"""The Kubernetes adapter: the only place that imports the Kubernetes client."""
