"""`check --deploy`: the keyring directory is an absolute path (every process must find the
same one), exists, is writable and is private."""

import os
import stat
from pathlib import Path

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def keyring_directory(app_configs, **kwargs) -> list[Error]:
    directory = Path(settings.REFERRAL_KEYRING_DIR)
    hint = (
        "Create it on a local disk outside the database's data directory and its backups, "
        "owned by the application's user, mode 0700 (docs/DATA.md)."
    )
    if not directory.is_absolute():
        problem = f"REFERRAL_KEYRING_DIR ({directory}) must be an absolute path."
    elif not directory.is_dir():
        problem = f"REFERRAL_KEYRING_DIR ({directory}) is not a directory."
    elif not os.access(directory, os.R_OK | os.W_OK | os.X_OK):
        problem = f"REFERRAL_KEYRING_DIR ({directory}) is not writable by this process."
    elif stat.S_IMODE(directory.stat().st_mode) & 0o077:
        problem = f"REFERRAL_KEYRING_DIR ({directory}) is open to other users."
    else:
        return []
    return [Error(problem, hint=hint, id="referrals.E001")]
