"""Background work: detached processes for runs and jobs, followed through the store."""

from engine.jobs.launcher import cancel, launch_job, launch_run, log_dir

__all__ = ["cancel", "launch_job", "launch_run", "log_dir"]
