"""The root exception of the export package."""
from appliance.errors import ApplianceError


class ExportError(ApplianceError):
    """An export, check or signing step failed; no bundle was left behind."""
