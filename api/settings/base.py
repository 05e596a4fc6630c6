"""Settings shared by every mode. Everything that differs between machines comes from the
environment (12-factor); the modes (dev, test, production) only change defaults."""

import os
from datetime import timedelta
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
    "django.middleware.security.SecurityMiddleware",
    # Static files (the docs pages' assets) are answered here, with their own long-lived
    # caching, before anything below treats the request as an API call.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "api.middleware.CacheControlMiddleware",
    "api.audit.middleware.AuditMiddleware",
    "api.middleware.ScopedSessionMiddleware",
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
# The person page's forms start again in words; elsewhere a problem document.
CSRF_FAILURE_VIEW = "referrals.me.views.csrf_failure"
# The CSRF secret lives in the session, where there is one (the admin, the person page): the
# person's page then sets one cookie only, its short session.
CSRF_USE_SESSIONS = True
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


def database_from_env(variable: str = "DATABASE_URL") -> dict:
    url = os.environ.get(variable)
    if not url:
        raise ImproperlyConfigured(
            "DATABASE_URL is not set. `make run`, `make test` and manage.py under the dev "
            "settings use an embedded PostgreSQL when it is unset; elsewhere, point it at a "
            "PostgreSQL server."
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
    # worker runs it: the search and the token look-up then skip planning.
    # DB_PREPARE_THRESHOLD=off turns preparing off (a pooler in transaction mode older than
    # PgBouncer 1.21 cannot keep prepared statements).
    config["OPTIONS"].setdefault("server_side_binding", True)
    threshold = os.environ.get("DB_PREPARE_THRESHOLD", "2")
    config["OPTIONS"].setdefault(
        "prepare_threshold", None if threshold == "off" else int(threshold)
    )
    return config


DATABASES = {"default": database_from_env()}
# Behind a pooler in transaction mode a server session belongs to no client between
# transactions, so a session-level advisory lock (the HSDS import's, partners/imports) is taken
# on a direct connection to PostgreSQL when DATABASE_DIRECT_URL is set (docs/DEPLOY.md).
if os.environ.get("DATABASE_DIRECT_URL"):
    DATABASES["direct"] = database_from_env("DATABASE_DIRECT_URL")
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

# Static files (Swagger UI's and Redoc's assets, the admin's) are served by WhiteNoise from the
# API's own processes in every mode, so the docs pages work with nothing in front of gunicorn.
# Outside production it finds them in the installed apps, so nothing has to be collected;
# production serves the hashed copies `manage.py collectstatic` writes (production.py).
STATIC_URL = "static/"
WHITENOISE_USE_FINDERS = True

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
    "DEFAULT_PARSER_CLASSES": ["api.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.CursorPagination",
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.ApplicationRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "application": os.environ.get("RATE_LIMIT_APPLICATION", "6000/min"),
        "token": os.environ.get("RATE_LIMIT_TOKEN", "30/min"),
        "claim": os.environ.get("RATE_LIMIT_CLAIM", "120/hour"),
    },
    "DEFAULT_SCHEMA_CLASS": "api.schema_operations.AutoSchema",
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    # Proxies in front of gunicorn whose X-Forwarded-For to trust for the client address (a
    # throttle key only, hashed; never stored). Unset: the address gunicorn sees.
    "NUM_PROXIES": int(os.environ["NUM_PROXIES"]) if os.environ.get("NUM_PROXIES") else None,
    # OPTIONS answers 405: DRF's metadata asserts on views without a serializer class (a 500
    # Schemathesis found), and nothing here needs it (no browser calls another origin).
    "DEFAULT_METADATA_CLASS": None,
    "UNAUTHENTICATED_USER": None,
    "DATETIME_FORMAT": "iso-8601",
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
        "ConsentPurposeEnum": "referrals.models.ConsentPurpose",
        "ConsentMethodEnum": "referrals.models.ConsentMethod",
        "ToldByEnum": "referrals.api.serializers.TOLD_BY_ORGANISATION",
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
        "api.schema_docs.verb_operation_ids",
        "api.schema.add_problem_responses",
        "api.schema.problem_types",
        "api.schema.no_nul_in_parameters",
        "api.schema_links.add_links",
        "api.schema.local_times",
        "api.schema.whole_answer_examples",
        "api.schema_docs.unique_type_lists",
        "api.schema_docs.add_token_endpoint",
        "api.schema_docs.describe",
        "api.schema_docs.enum_varnames",
        "api.schema_docs.declare_headers",
        "api.schema_docs.error_examples",
        "api.webhooks.schema.add_webhooks",
    ],
    "GET_LIB_DOC_EXCLUDES": "api.schema_docs.lib_doc_excludes",
    "TAGS": [
        {"name": name, "description": description}
        for name, description in {
            "oauth": "Access tokens: the OAuth 2.0 client credentials grant.",
            "me": "The calling organisation and its token.",
            "organisations": "The partner directory's organisations.",
            "taxonomy": "The service types, named in nine languages.",
            "services": "Services, their locations and opening hours.",
            "capacity": "Who can take someone today, and its history.",
            "partnerships": "Data-sharing agreements between organisations.",
            "hsds": "Open Referral HSDS 3.1 export for other directories.",
            "imports": "Import HSDS directories: a job, with its report.",
            "referrals": "Consent-bound referrals, their notes and timeline.",
            "webhooks": "Webhook endpoints and their deliveries.",
            "audit": "The tamper-evident audit trail's head.",
            "stats": "Network statistics for advocacy; small cells hidden.",
            "self-service": "The person referred, with claim code and PIN and no account: the "
            "status, who opened their details, withdrawing consent, stopping contact.",
        }.items()
    ],
}

# --- Crypto-shredding ------------------------------------------------------------------------
# A destroyed referral's data becomes undecryptable everywhere (database pages, WAL, backups,
# process memory) within REFERRAL_SHRED_HOURS: data keys are wrapped by epoch keys kept outside
# PostgreSQL in REFERRAL_KEYRING_DIR, which the epoch job replaces and destroys; its timings
# derive from the bound (referrals/keyring.py, Schedule).
_shred_hours = float(os.environ.get("REFERRAL_SHRED_HOURS") or 24)
if not 0 < _shred_hours <= 24 * 30:
    raise ImproperlyConfigured("REFERRAL_SHRED_HOURS must be more than 0 and at most 720.")
REFERRAL_SHRED_WITHIN = timedelta(hours=_shred_hours)
REFERRAL_KEY_EPOCH_JOB_EVERY = REFERRAL_SHRED_WITHIN / 24
REFERRAL_KEYRING_DIR = Path(os.environ.get("REFERRAL_KEYRING_DIR") or VAR_DIR / "keyring")

# --- Celery ----------------------------------------------------------------------------------
# The filesystem transport ignores the host; naming one keeps kombu from warning that there is
# none every time it connects.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "filesystem://localhost/"
if CELERY_BROKER_URL.startswith("filesystem:"):
    _queue = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue / "out"),
        "data_folder_out": str(_queue / "out"),
        "processed_folder": str(_queue / "processed"),
        "control_folder": str(_queue / "control"),
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # kombu's Redis transport, surviving a broker lost mid-close (api/brokers.py).
    CELERY_BROKER_TRANSPORT = "api.brokers:Transport"
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
    # Epoch keys (referrals/tasks.py): starts a new epoch when the newest is due, moves live data
    # keys to it and destroys older epoch keys. Most runs find nothing to do.
    "referrals-rotate-key-epochs": {
        "task": "referrals.rotate_key_epochs",
        "schedule": REFERRAL_KEY_EPOCH_JOB_EVERY.total_seconds(),
    },
    # FHIR Subscriptions (referrals/fhir/services.py): heartbeats for quiet ones, ended ones off.
    "fhir-subscriptions": {"task": "fhir.subscriptions", "schedule": 15.0},
    # Senders hear once, seven days ahead, of a consent about to lapse (referral.consent_expiring).
    "referrals-warn-expiring-consents": {
        "task": "referrals.warn_expiring_consents",
        "schedule": 900.0,
    },
    # HSDS imports (partners/imports/services.py): queues unfinished jobs no worker runs (a
    # killed worker's, or one whose task was lost with the broker).
    "directory-imports-resume": {"task": "directory.imports_resume", "schedule": 30.0},
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
            ("self_service_tokens", 3600),
            ("self_service_locks", 86400),
            ("rate_limit_windows", 3600),
            ("audit_trail", 86400),
            ("directory_imports", 86400),
        )
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Any number of beats may run: each job's period is claimed in the database before it is sent.
CELERY_BEAT_SCHEDULER = "api.celery:OncePerPeriodScheduler"

# --- Logging: structured, one JSON object a line, never bodies, paths or tokens -------------
# api.logging.configure also routes Python's warnings through these handlers. gunicorn's worker
# messages come here too, so its refusals of malformed requests are filtered like Django's; its
# access log (which writes paths) goes nowhere: the API logs route patterns instead.
LOGGING_CONFIG = "api.logging.configure"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "api.logging.RequestIDFilter"},
        "request_data": {"()": "api.logging.RequestDataFilter"},
        "routine": {"()": "api.logging.RoutineAtDebug"},
    },
    "formatters": {"json": {"()": "api.logging.JSONFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_id", "request_data"],
        },
        "null": {"class": "logging.NullHandler"},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
        "oauthlib": {"level": "WARNING"},
        "gunicorn.error": {"handlers": ["console"], "propagate": False},
        "gunicorn.access": {"handlers": ["null"], "propagate": False},
        # Celery's line per task received and done, and beat's per task sent: the webhook
        # sweeper alone would bury everything else in them. LOG_LEVEL=DEBUG shows them.
        "celery.app.trace": {"filters": ["routine"]},
        "celery.worker.strategy": {"filters": ["routine"]},
        "celery.beat": {"filters": ["routine"]},
        # The embedded PostgreSQL's every step when manage.py starts or joins it.
        "pgserver": {"level": "WARNING"},
    },
}

# --- Application settings --------------------------------------------------------------------
# Self-service sign-ins (claim code and PIN) per client address and per code, known or not;
# five failures also lock a code (referrals.services). Counted in api_ratelimitwindow under
# keyed hashes.
SELF_SERVICE_RATES = {
    "address": os.environ.get("SELF_SERVICE_RATE_ADDRESS", "30/h"),
    "code": os.environ.get("SELF_SERVICE_RATE_CODE", "20/h"),
}
# Where the person page's quick exit goes: a neutral site, as domestic-violence services do.
QUICK_EXIT_URL = os.environ.get("QUICK_EXIT_URL", "https://www.google.com/")
# The largest HSDS file an import takes (bytes), refused with 413 before it is read.
DIRECTORY_IMPORT_MAX_BYTES = int(os.environ.get("DIRECTORY_IMPORT_MAX_BYTES", 200 * 1024 * 1024))
ALLOW_LOOPBACK_WEBHOOKS = env_bool("ALLOW_LOOPBACK_WEBHOOKS", False)

# Key-encryption keys for referral personal data: "kid:base64-32-bytes,..."; the first wraps new
# data keys, the rest only unwrap until `manage.py rotate_keys` has run. The fallback is a
# public dev-only key; production.py refuses to start without the variable.
DEV_REFERRAL_KEKS = "dev1:c3JuLWRldi1vbmx5LWtlay1uZXZlci1pbi1wcm9kISE="
REFERRAL_KEKS = os.environ.get("REFERRAL_KEKS") or DEV_REFERRAL_KEKS
