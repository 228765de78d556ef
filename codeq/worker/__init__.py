"""The worker runtime: ``Worker`` runs handlers for claimed tasks (see ``runtime``)."""

from codeq.worker.job import Job
from codeq.worker.outcomes import Abandon, Fail, Retry
from codeq.worker.runtime import Worker
from codeq.worker.stats import Stats

__all__ = ["Abandon", "Fail", "Job", "Retry", "Stats", "Worker"]
