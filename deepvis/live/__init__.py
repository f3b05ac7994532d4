"""The process's one compute thread and the live pipeline that runs a model frame by frame."""
