"""The controller: Tekton's PipelineRun status back to the forge, once, through restarts;
and, as the leader, the Repositories' schedules (`scheduling.py`).

Entry point: `ci.controller.app.run_controller(settings, stop=...)`.
"""
