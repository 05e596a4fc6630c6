"""Settings shared by every mode. Everything that differs between machines comes from the
environment (12-factor); the modes (dev, test, production) only change defaults."""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


SECRET_KEY = os.environ.get("SECRET_KEY", "")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "oauth2_provider",
    "api",
    "partners",
    "referrals",
]

MIDDLEWARE = [
    "api.middleware.RequestIDMiddleware",
    "api.audit.middleware.AuditMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "api.middleware.AdminSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "api.middleware.AdminAuthenticationMiddleware",
    "api.middleware.AdminMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "api.middleware.ProblemDetailsMiddleware",
]

ROOT_URLCONF = "api.urls"
# A path that is not a route is a 404 problem, never an HTML redirect (a POST cannot follow
# one anyway); the documented paths are the only spellings.
APPEND_SLASH = False
CSRF_FAILURE_VIEW = "api.errors.csrf_failure"
WSGI_APPLICATION = "api.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def database_from_env() -> dict:
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise ImproperlyConfigured(
            "DATABASE_URL is not set. Use `make run` or `make test`, which start an embedded "
            "PostgreSQL when it is unset, or point it at a PostgreSQL server."
        )
    config = dj_database_url.parse(url, conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")))
    # The stock backend plus a health check that reads the socket instead of a `SELECT 1` per
    # request (see api/db/base.py).
    config["ENGINE"] = "api.db"
    config["CONN_HEALTH_CHECKS"] = True
    config.setdefault("OPTIONS", {})
    # A query that hangs must not hold a worker: the API answers 503 instead (see errors.py).
    config["OPTIONS"].setdefault("connect_timeout", int(os.environ.get("DB_CONNECT_TIMEOUT", "3")))
    statement_timeout = int(os.environ.get("DB_STATEMENT_TIMEOUT_MS", "10000"))
    config["OPTIONS"].setdefault("options", f"-c statement_timeout={statement_timeout}")
    # Parameters bound by the server, so psycopg can prepare a statement the second time a
    # worker runs it: the search and the token look-up then skip planning (about 2 ms a search).
    # DB_PREPARE_THRESHOLD=off turns preparing off (a pooler in transaction mode older than
    # PgBouncer 1.21 cannot keep prepared statements).
    config["OPTIONS"].setdefault("server_side_binding", True)
    threshold = os.environ.get("DB_PREPARE_THRESHOLD", "2")
    config["OPTIONS"].setdefault(
        "prepare_threshold", None if threshold == "off" else int(threshold)
    )
    return config


DATABASES = {"default": database_from_env()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    # Client secrets are 256-bit random strings, not passwords: a salted SHA-256 is enough and
    # keeps the token endpoint fast. See api/hashers.py.
    "api.hashers.ClientSecretHasher",
]

LANGUAGE_CODE = "en"
LANGUAGES = [
    ("en", "English"),
    ("es", "Español"),
    ("fr", "Français"),
    ("pt", "Português"),
    ("ro", "Română"),
    ("ru", "Русский"),
    ("th", "ไทย"),
    ("zh", "中文"),
    ("tl", "Tagalog"),
]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# --- OAuth 2 (django-oauth-toolkit) -------------------------------------------------------
OAUTH2_PROVIDER_APPLICATION_MODEL = "partners.Application"

SCOPES = {
    "directory:read": "Read the partner directory: organisations, services, capacity.",
    "directory:write": "Edit your own organisation, services and partnerships.",
    "capacity:write": "Publish capacity for your own services.",
    "referrals:read": "Read referrals your organisation sent or received.",
    "referrals:write": "Create referrals and take referral actions.",
    "webhooks:manage": "Manage your organisation's webhook endpoints.",
}
# Only the network's own resource servers may introspect; partner applications never can.
INTROSPECTION_SCOPE = "introspection"

ACCESS_TOKEN_EXPIRE_SECONDS = int(os.environ.get("ACCESS_TOKEN_EXPIRE_SECONDS", "900"))

OAUTH2_PROVIDER = {
    "SCOPES": {**SCOPES, INTROSPECTION_SCOPE: "Introspect tokens (network resource servers only)."},
    "DEFAULT_SCOPES": [],
    "SCOPES_BACKEND_CLASS": "api.oauth.ApplicationScopes",
    "OAUTH2_VALIDATOR_CLASS": "api.oauth.Validator",
    "ACCESS_TOKEN_EXPIRE_SECONDS": ACCESS_TOKEN_EXPIRE_SECONDS,
    "CLIENT_SECRET_HASHER": "client_sha256",
    # No refresh tokens or redirects exist here (client credentials only); these keep the
    # toolkit's RFC 9700 deploy checks satisfied should either ever appear.
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
}

# --- REST framework and OpenAPI -------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.HasScopes"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.CursorPagination",
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.ApplicationRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "application": os.environ.get("RATE_LIMIT_APPLICATION", "6000/min"),
        "token": os.environ.get("RATE_LIMIT_TOKEN", "30/min"),
    },
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    # OPTIONS answers 405: DRF's metadata asserts on views without a serializer class (a 500
    # Schemathesis found), and nothing here needs it (no browser calls another origin).
    "DEFAULT_METADATA_CLASS": None,
    "UNAUTHENTICATED_USER": None,
    "DATETIME_FORMAT": "iso-8601",
    "PAGE_SIZE": 25,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Solidarity Referral Network API",
    "DESCRIPTION": (
        "Consent-bound referrals, service capacity and webhooks between sex-worker-led "
        "organisations, immigrant rights groups and clinics. Partner systems authenticate with "
        "the OAuth 2.0 client credentials grant; every operation lists the scopes it needs. "
        "Every error is an RFC 9457 problem document (`application/problem+json`)."
    ),
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SORT_OPERATIONS": True,
    "ENUM_NAME_OVERRIDES": {
        "OrganisationKindEnum": "partners.models.OrganisationKind",
        "AcceptingReferralsEnum": "partners.models.AcceptingReferrals",
        "ServiceStatusEnum": "partners.models.ServiceStatus",
        "PartnershipStatusEnum": "partners.models.PartnershipStatus",
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # validatorUrl None: Swagger UI would otherwise send the schema URL to validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {
        "persistAuthorization": True,
        "displayOperationId": False,
        "validatorUrl": None,
    },
    "SERVERS": [{"url": "/", "description": "This server"}],
    "PREPROCESSING_HOOKS": ["api.schema.only_public_api"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.add_problem_responses",
        "api.schema_links.add_links",
        "api.schema.local_times",
        "api.schema.whole_answer_examples",
    ],
    "TAGS": [
        {"name": "me", "description": "The calling organisation and its token."},
        {"name": "organisations", "description": "The partner directory's organisations."},
        {"name": "taxonomy", "description": "The service types, named in nine languages."},
        {"name": "services", "description": "Services, their locations and opening hours."},
        {"name": "capacity", "description": "Who can take someone today, and its history."},
        {"name": "partnerships", "description": "Data-sharing agreements between organisations."},
        {"name": "hsds", "description": "Open Referral HSDS 3.1 export for other directories."},
        {"name": "referrals", "description": "Consent-bound referrals, their notes and timeline."},
        {"name": "webhooks", "description": "Webhook endpoints and their deliveries."},
        {"name": "audit", "description": "The tamper-evident audit trail's head."},
        {"name": "stats", "description": "Network statistics for advocacy; small cells hidden."},
    ],
}

# --- Celery ----------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "filesystem://"
if CELERY_BROKER_URL == "filesystem://":
    _queue = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue / "out"),
        "data_folder_out": str(_queue / "out"),
        "processed_folder": str(_queue / "processed"),
        "control_folder": str(_queue / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing must not hang a request when the broker is down: the outbox sweeper re-queues.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BEAT_SCHEDULE: dict = {
    # Webhooks (api/webhooks/services.py sweep): queues deliveries whose wait ended or whose
    # task was lost (broker outage, dead worker) and fans out events whose hook never ran.
    "webhooks-sweep": {"task": "webhooks.sweep", "schedule": 5.0},
    # Referrals (referrals/tasks.py): open referrals past respond_by become expired; personal
    # data whose consent expired is crypto-shredded. Both batch under SKIP LOCKED.
    "referrals-expire-overdue": {"task": "referrals.expire_overdue", "schedule": 300.0},
    "referrals-destroy-expired-consents": {
        "task": "referrals.destroy_expired_consents",
        "schedule": 900.0,
    },
    # Retention (api/retention.py): each job locks its rows with SKIP LOCKED, so overlaps are
    # harmless.
    **{
        f"retention-{job}": {"task": "retention.run", "schedule": every, "args": (job,)}
        for job, every in (
            ("referral_personal_data", 3600),
            ("referral_metadata", 86400),
            ("webhook_attempts", 86400),
            ("outbox_events", 86400),
            ("oauth_access_tokens", 86400),
            ("oauth_grants", 86400),
            ("oauth_id_tokens", 86400),
            ("idempotency_keys", 3600),
            ("admin_sessions", 86400),
            ("rate_limit_windows", 3600),
            ("audit_trail", 86400),
        )
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Logging: structured, one JSON object a line, never bodies or tokens ---------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "api.logging.RequestIDFilter"}},
    "formatters": {"json": {"()": "api.logging.JSONFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_id"],
        },
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
        "oauthlib": {"level": "WARNING"},
    },
}

# --- Application settings --------------------------------------------------------------------
API_PAGE_SIZE_MAX = 100
ALLOW_LOOPBACK_WEBHOOKS = env_bool("ALLOW_LOOPBACK_WEBHOOKS", False)

# Key-encryption keys for referral personal data: "kid:base64-32-bytes,..."; the first wraps new
# data keys, the rest only unwrap until `manage.py rotate_keys` has run. The fallback is a
# public dev-only key; production.py refuses to start without the variable.
DEV_REFERRAL_KEKS = "dev1:c3JuLWRldi1vbmx5LWtlay1uZXZlci1pbi1wcm9kISE="
REFERRAL_KEKS = os.environ.get("REFERRAL_KEKS") or DEV_REFERRAL_KEKS
