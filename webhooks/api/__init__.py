"""The read API (`/api/v1`): runs and step logs for people, authorized by Kubernetes RBAC.
`routes` is HTTP, `service` the work, `following` the live-to-archive switch, `runs` the
views of runs, `masking` what live logs are masked with."""
