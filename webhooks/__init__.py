"""The webhook receiver: forge events in, PipelineRuns out."""
