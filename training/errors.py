"""The root exception of the training package."""
from appliance.errors import ApplianceError


class TrainingError(ApplianceError):
    """Training, evaluation or ingest could not go on; the message says why."""
