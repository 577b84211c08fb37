"""The report endpoints' part of ``/openapi.json`` (merged in by
:func:`pixel_server.ingest.api.openapi_document`)."""

from __future__ import annotations

from typing import Any

from pixel_server.reports.base import MAX_DAYS, MODELS, WINDOWS

REPORT_NAMES = ("overview", "funnel", "purchases", "products", "attribution", "operations")


def _error(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Error"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def report_paths() -> dict[str, Any]:
    def query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "required": False,
            "description": description,
            "schema": schema,
        }

    parameters = [
        {"name": "pixel_id", "in": "path", "required": True, "schema": {"type": "string"}},
        {
            "name": "report",
            "in": "path",
            "required": True,
            "description": "A report name; add .csv for one of its tables as CSV",
            "schema": {"enum": [*REPORT_NAMES, *(f"{n}.csv" for n in REPORT_NAMES)]},
        },
        query(
            "from",
            "First day, inclusive (default: 29 days before `to`)",
            {"type": "string", "format": "date"},
        ),
        query(
            "to",
            f"Last day, inclusive (default: today); at most {MAX_DAYS} days in all",
            {"type": "string", "format": "date"},
        ),
        query("tz", "IANA time zone of the days (default: the pixel's)", {"type": "string"}),
        query("window", "Attribution click window in days", {"enum": list(WINDOWS), "default": 7}),
        query("model", "Attribution model", {"enum": list(MODELS), "default": "last_touch"}),
        query("table", "For .csv: which table (default: the report's first)", {"type": "string"}),
    ]
    return {
        "/api/v1/reports/{pixel_id}/{report}": {
            "get": {
                "summary": "A report over the merged events of one pixel",
                "description": (
                    "overview (events per name per day, unique visitors), funnel (visitors "
                    "doing ViewContent → AddToCart → InitiateCheckout → AddPaymentInfo → "
                    "Purchase in order), purchases (orders, revenue, AOV per day and "
                    "currency, refunds netted), products (per product and variant: gross, refunded "
                    "and net revenue, refunded units), "
                    "attribution (orders and revenue by channel, last or first touch), "
                    "operations (forwarding outcomes, dedup statistics). Every event counts "
                    "once whichever sources sent it. Authenticate with a report token "
                    "(Bearer or the login cookie)."
                ),
                "security": [{"reportToken": []}, {"reportCookie": []}],
                "parameters": parameters,
                "responses": {
                    "200": {
                        "description": "The report (JSON), or one table as CSV",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Report"}},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    "400": _error("A parameter is malformed (error.field names it)"),
                    "401": _error("No or unknown report token"),
                    "403": _error("The token belongs to another pixel"),
                    "404": _error("Unknown report"),
                    "422": _error("Parameters that do not fit together (from after to, too long)"),
                    "503": _error("ClickHouse unavailable"),
                },
            }
        }
    }


def report_components() -> dict[str, Any]:
    return {
        "securitySchemes": {
            "reportToken": {"type": "http", "scheme": "bearer"},
            "reportCookie": {"type": "apiKey", "in": "cookie", "name": "px_report"},
        },
        "schemas": {
            "Report": {
                "type": "object",
                "required": ["report", "params", "tables"],
                "properties": {
                    "report": {"enum": list(REPORT_NAMES)},
                    "params": {
                        "type": "object",
                        "properties": {
                            "pixel_id": {"type": "string"},
                            "from": {"type": "string", "format": "date"},
                            "to": {"type": "string", "format": "date"},
                            "tz": {"type": "string"},
                            "window": {"type": "integer"},
                            "model": {"enum": list(MODELS)},
                        },
                    },
                    "tables": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Tables available as CSV (?table=)",
                    },
                },
                "additionalProperties": True,
            }
        },
    }
