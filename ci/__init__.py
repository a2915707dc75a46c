"""Ferry core: settings, logging, Kubernetes access, forges, controller, local runner, CLI."""
