"""Errors raised by the pipelines package: one base class, small subclasses with clear messages."""


class PipelineError(Exception):
    """Base class of every error raised by `pipelines`."""


class DataFetchError(PipelineError):
    """The reports archive or metadata could not be obtained or failed its checksum."""


class ReportParseError(PipelineError):
    """A report file is unusable; the message names the file and the problem."""

    def __init__(self, path: str, problem: str, kind: str = "error"):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem
        self.kind = kind


class DataNotPreparedError(PipelineError):
    """A stage needs output of an earlier stage that is not there yet."""
