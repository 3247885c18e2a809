"""The OpenAPI 3.1 description served at /api/v1/openapi.json."""

from __future__ import annotations

STRING, NUMBER, INTEGER = {"type": "string"}, {"type": "number"}, {"type": "integer"}
NULLABLE = {"type": ["string", "null"]}
FLAG = {"type": ["integer", "boolean", "string", "null"], "description": "1 or 0"}
TIME = {
    "type": "string",
    "description": "ISO 8601; without an offset: PORTAL_TIMEZONE",
    "examples": ["2026-11-03T09:15:02+08:00"],
}

INTERACTION = {
    "type": "object",
    "required": ["interaction_id", "offered_at", "ended_at"],
    "properties": {
        "interaction_id": STRING,
        "channel": {"enum": ["phone", "chat", "email", "social"]},
        "queue": STRING,
        "agent_no": {**NULLABLE, "description": "empty when abandoned in queue"},
        "offered_at": TIME,
        "answered_at": {**TIME, "type": ["string", "null"]},
        "ended_at": TIME,
        "wrap_seconds": NUMBER,
        "hold_seconds": NUMBER,
        "customer_key": NULLABLE,
        "transferred": FLAG,
        "resolved": FLAG,
    },
}
SURVEY = {
    "type": "object",
    "required": ["survey_id", "interaction_id", "submitted_at"],
    "properties": {
        "survey_id": STRING,
        "interaction_id": STRING,
        "csat": {"type": ["integer", "null"], "minimum": 1, "maximum": 5},
        "nps": {"type": ["integer", "null"], "minimum": 0, "maximum": 10},
        "submitted_at": TIME,
        "comment": STRING,
    },
}
RESULT = {
    "type": "object",
    "properties": {
        "import_id": INTEGER,
        "status": STRING,
        "rows": INTEGER,
        "inserted": INTEGER,
        "updated": INTEGER,
        "unchanged": INTEGER,
        "error": STRING,
        "rejected": {
            "type": "array",
            "items": {"type": "object", "properties": {"row": INTEGER, "reason": STRING}},
        },
    },
}


MOMENT = {"type": ["string", "null"], "format": "date-time", "description": "UTC, ISO 8601"}
PERIOD = {
    "type": "object",
    "properties": {
        "key": {**STRING, "examples": ["2026-11", "2026-W47", "2026-Q4"]},
        "kind": {"enum": ["weekly", "monthly", "quarterly"]},
        "first_day": {"type": "string", "format": "date"},
        "last_day": {"type": "string", "format": "date"},
        "state": {"enum": ["open", "grace", "closing", "closed"]},
        "close_at": {**MOMENT, "description": "when the scheduler closes it (UTC)"},
        "closed_at": MOMENT,
        "published_at": MOMENT,
        "results_version": {
            "type": ["integer", "null"],
            "description": "the latest frozen results version; null until the first close",
        },
        "published_version": {
            "type": ["integer", "null"],
            "description": "the results version published to agents; null until published",
        },
    },
}
SCORE = {"type": ["number", "null"]}
RESULT_ROW = {
    "type": "object",
    "description": "one agent's result, as `flask results export --format json` writes it",
    "properties": {
        "period": STRING,
        "agent_no": STRING,
        "name": STRING,
        "team": STRING,
        "position": STRING,
        "cohort": {**STRING, "examples": ["电话客服/regular", "电话客服/new"]},
        "weighted": SCORE,
        "bonus": NUMBER,
        "deductions": NUMBER,
        "offset": NUMBER,
        "final": SCORE,
        "gate_open": {"type": "boolean"},
        "eligible": {"type": "boolean"},
        "rank": {"type": ["integer", "null"], "description": "null when not eligible"},
        "tier_multiplier": SCORE,
        "status": {"const": "final"},
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "metric": STRING,
                    "category": {"enum": ["quality", "efficiency", "experience", "development"]},
                    "weight": NUMBER,
                    "value": SCORE,
                    "score": SCORE,
                    "included": {"type": "boolean"},
                    "note": {
                        "type": ["string", "null"],
                        "enum": ["no_value", "insufficient_sample", "gated", None],
                    },
                },
            },
        },
    },
}
ERROR = {"type": "object", "properties": {"error": STRING}}


def _import_path(name: str, schema: dict) -> dict:
    return {
        "post": {
            "summary": f"Import {name} (same rules and idempotence as the file import)",
            "security": [{"bearer": []}],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"type": "array", "maxItems": 10000, "items": schema}
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "all rows stored",
                    "content": {"application/json": {"schema": RESULT}},
                },
                "400": {"description": "the body is not a non-empty JSON list"},
                "401": {"description": "missing, unknown or revoked token"},
                "413": {"description": "more than 10,000 rows"},
                "422": {
                    "description": "some rows are bad: nothing was stored",
                    "content": {"application/json": {"schema": RESULT}},
                },
            },
        }
    }


PERIOD_PATHS = {
    "/periods": {
        "get": {
            "summary": "Every period, newest first, with its state and results versions",
            "security": [{"bearer": []}],
            "responses": {
                "200": {
                    "description": "the periods",
                    "content": {"application/json": {"schema": {"type": "array", "items": PERIOD}}},
                },
                "401": {"description": "missing, unknown or revoked token"},
            },
        }
    },
    "/periods/{key}/results": {
        "get": {
            "summary": "A period's published results (the published results version)",
            "security": [{"bearer": []}],
            "parameters": [
                {"name": "key", "in": "path", "required": True, "schema": STRING},
            ],
            "responses": {
                "200": {
                    "description": "one row per scored agent",
                    "content": {
                        "application/json": {"schema": {"type": "array", "items": RESULT_ROW}}
                    },
                },
                "401": {"description": "missing, unknown or revoked token"},
                "404": {
                    "description": "no such period, or its results are not published",
                    "content": {"application/json": {"schema": ERROR}},
                },
            },
        }
    },
}


def document(base_url: str) -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Performance portal API", "version": "1"},
        "servers": [{"url": f"{base_url}/api/v1"}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": {
            "/interactions": _import_path("interactions", INTERACTION),
            "/surveys": _import_path("survey responses", SURVEY),
            **PERIOD_PATHS,
        },
    }
