"""Job API: a job is a generator that yields events and checks a cancel token at every yield."""
from engine.jobs.cancel import CancelToken, JobCancelled
from engine.jobs.events import Event, JobOutcome, Log, Metrics, Preview, Progress
from engine.jobs.runner import Job, JobRunner, run_job_sync

__all__ = [
    "CancelToken",
    "Event",
    "Job",
    "JobCancelled",
    "JobOutcome",
    "JobRunner",
    "Log",
    "Metrics",
    "Preview",
    "Progress",
    "run_job_sync",
]
