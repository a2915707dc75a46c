"""One installed Ferry (receiver + controller under their ServiceAccounts) for the whole
end-to-end package: starting them is the dear part, and every test uses its own namespace,
Repository and fake forge, so they do not see each other's runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.control_plane import ControlPlane
from tests.cluster.kubelet import SimulatedKubelet
from tests.cluster.resources import Kube
from tests.cluster.tekton import TektonController
from tests.e2e.installation import Installation, running


@pytest.fixture(scope="package")
def ferry(cluster: ControlPlane, kube: Kube, tekton: TektonController, kubelet: SimulatedKubelet,
          cluster_bin_dir: Path, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Installation]:
    with running(cluster, kube, cluster_bin_dir, tmp_path_factory.mktemp("ferry")) as installed:
        yield installed
