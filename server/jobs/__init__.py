"""Durable background jobs: a queue in the database, a runner per process.

Register a handler for a kind, queue jobs in a transaction, and read their progress
through ``GET /api/v1/jobs/{id}``::

    runner = app[RUNNER]
    runner.register("transcript_export", export)            # at start-up
    job = await runner.enqueue(db, "transcript_export", {"session_id": 7},
                               dispute_id=3, session_id=7, created_by=principal.actor())

    async def export(ctx: JobContext) -> Mapping[str, Any]:
        ctx.progress(0.5, N_("Rendering the PDF"))           # throttled, never backwards
        ...                                                 # ctx.database, ctx.store,
        return {"document_id": 12}                          # ctx.spool, ctx.settings

A handler may be run again (after a crash or a retry), so it must be idempotent.
"""

from server.jobs.context import Handler, JobContext
from server.jobs.errors import JobFailed, RetryableError
from server.jobs.runner import JobRunner, RunnerPolicy

__all__ = ["Handler", "JobContext", "JobFailed", "JobRunner", "RetryableError", "RunnerPolicy"]
