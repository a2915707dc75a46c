"""The controller: Tekton's PipelineRun status back to the forge, once, through restarts.

Entry point: `ci.controller.app.run_controller(settings, stop=...)`.
"""
