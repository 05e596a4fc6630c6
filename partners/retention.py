"""The directory's retention job, registered with api.retention when the app is ready: HSDS
import jobs (and their reports) RETENTION_IMPORT_DAYS (90) after they finish; the upload itself
went when the job finished."""

from datetime import datetime

from django.db.models import QuerySet

from api.retention import days, deleting
from partners.models import FINISHED_IMPORT_STATUSES, DirectoryImport


def finished_imports(now: datetime) -> QuerySet[DirectoryImport]:
    cutoff = now - days("RETENTION_IMPORT_DAYS", 90)
    return DirectoryImport.objects.filter(status__in=FINISHED_IMPORT_STATUSES, finished__lt=cutoff)


JOBS = (deleting("directory_imports", finished_imports),)
