"""HSDS imports over HTTP: upload a directory (a job, 202), then read the job. Thin: the rules are
in partners/imports/services.py."""

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from api.errors import DomainError, PayloadTooLarge, Unprocessable
from api.schema_operations import docstring_with
from api.serializers import StrictFieldsMixin, validated
from partners.api.views import visible_or_404
from partners.imports import services
from partners.models import DirectoryImport, ImportFormat, OnConflict

READ = ["directory:read"]
WRITE = ["directory:write"]
MAPPING_MAX_BYTES = 1024 * 1024
# Multipart boundaries and the other fields: a request this much over the file limit may still
# carry a file within it.
MULTIPART_SLACK = 64 * 1024 + MAPPING_MAX_BYTES
FORMATS_BY_TYPE = {
    "application/json": ImportFormat.JSON,
    "application/zip": ImportFormat.TABULAR,
    "application/x-zip-compressed": ImportFormat.TABULAR,
}
FORMATS_BY_SUFFIX = {".json": ImportFormat.JSON, ".zip": ImportFormat.TABULAR}


class UnsupportedMediaType(DomainError):
    status = 415
    code = "unsupported-media-type"


class ImportUploadSerializer(StrictFieldsMixin, serializers.Serializer):
    file = serializers.FileField(
        help_text="The HSDS directory: a JSON document (a service, an organization with "
        "`services`, an array or an HSDS `Page` of either), or a zip of the tabular format's "
        "CSV files with their `datapackage.json`."
    )
    format = serializers.ChoiceField(
        choices=ImportFormat.choices,
        required=False,
        help_text="`json` or `tabular`; by default from the file's media type or name "
        "(`.json`, `.zip`).",
    )
    dry_run = serializers.BooleanField(
        default=False, help_text="Validate and report; change nothing."
    )
    on_conflict = serializers.ChoiceField(
        choices=OnConflict.choices,
        default=OnConflict.SKIP,
        help_text="A record whose HSDS `id` you imported before: `skip` it, or `update` it.",
    )
    taxonomy_mapping = serializers.FileField(
        required=False,
        help_text="How the source's taxonomy terms map to this network's codes or safeguards: "
        "CSV with the columns `taxonomy,code,srn_code`, or JSON "
        '`{"<taxonomy>": {"<code>": "<srn_code>"}}`. A taxonomy is named by its name, id or '
        f"URI. At most {MAPPING_MAX_BYTES} bytes.",
    )

    def validate_taxonomy_mapping(self, value):
        if value.size > MAPPING_MAX_BYTES:
            raise serializers.ValidationError(f"At most {MAPPING_MAX_BYTES} bytes.")
        return value


class IssueSerializer(serializers.Serializer):
    detail = serializers.CharField()
    record = serializers.CharField(required=False, help_text="The record's HSDS id.")
    pointer = serializers.CharField(
        required=False, help_text="JSON: where the field is in the uploaded document."
    )
    file = serializers.CharField(required=False, help_text="Tabular: the CSV file.")
    row = serializers.IntegerField(
        required=False, help_text="Tabular: the row number in the file (the header is row 1)."
    )
    column = serializers.CharField(required=False, help_text="Tabular: the column.")


class UnmappedTermSerializer(serializers.Serializer):
    taxonomy = serializers.CharField()
    code = serializers.CharField()
    name = serializers.CharField()
    count = serializers.IntegerField(help_text="Records carrying it.")


class ProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField(help_text="Records written or decided.")
    total = serializers.IntegerField(
        allow_null=True, help_text="Records in the file; null until it is read."
    )


class CountsSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    skipped = serializers.IntegerField()
    refused = serializers.IntegerField(
        help_text="Services not imported: theirs or their organisation's records had errors."
    )


class DirectoryImportSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    counts = serializers.SerializerMethodField()
    errors = IssueSerializer(many=True, help_text="The first errors, in file order.")
    warnings = IssueSerializer(many=True, help_text="The first warnings, in file order.")
    unmapped_terms = UnmappedTermSerializer(many=True)
    failure = serializers.CharField(
        allow_null=True, help_text="Why the job could not run to its end."
    )

    class Meta:
        model = DirectoryImport
        fields = [
            "id",
            "status",
            "format",
            "dry_run",
            "on_conflict",
            "size",
            "progress",
            "counts",
            "errors",
            "error_count",
            "warnings",
            "warning_count",
            "unmapped_terms",
            "failure",
            "created",
            "started",
            "finished",
        ]

    def get_progress(self, job) -> ProgressSerializer:
        return {"done": job.done, "total": job.total}

    def get_counts(self, job) -> CountsSerializer:
        return services.counts_of(job)

    def to_representation(self, job):
        out = super().to_representation(job)
        out["failure"] = job.failure or None
        return out


JOB_EXAMPLE = {
    "id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
    "status": "succeeded",
    "format": "json",
    "dry_run": False,
    "on_conflict": "update",
    "size": 48213,
    "progress": {"done": 12, "total": 12},
    "counts": {"created": 9, "updated": 2, "skipped": 0, "refused": 1},
    "errors": [
        {
            "record": "ac148810-d857-441c-9679-408f346de14b",
            "pointer": "/contents/4/service_at_locations/0/location/latitude",
            "detail": "Out of range: must be between -90 and 90.",
        }
    ],
    "error_count": 1,
    "warnings": [],
    "warning_count": 0,
    "unmapped_terms": [{"taxonomy": "211 LA", "code": "BD-1800", "name": "Food", "count": 3}],
    "failure": None,
    "created": "2026-11-29T10:00:00Z",
    "started": "2026-11-29T10:00:01Z",
    "finished": "2026-11-29T10:00:04Z",
}


def _format_of(data: dict) -> str:
    declared = data.get("format")
    if declared:
        return declared
    upload = data["file"]
    by_type = FORMATS_BY_TYPE.get((upload.content_type or "").split(";")[0].strip().lower())
    name = (upload.name or "").lower()
    by_suffix = next((f for s, f in FORMATS_BY_SUFFIX.items() if name.endswith(s)), None)
    chosen = by_type or by_suffix
    if chosen is None:
        raise Unprocessable(
            "Say which format the file is in: format=json or format=tabular.",
            errors=[{"pointer": "/format", "detail": "Cannot tell the format."}],
        )
    return chosen


class DirectoryImportListView(APIView):
    required_scopes = WRITE
    parser_classes = [MultiPartParser]

    @extend_schema(
        tags=["imports"],
        request={"multipart/form-data": ImportUploadSerializer},
        responses={
            202: OpenApiResponse(DirectoryImportSerializer, description="The job, queued."),
            413: OpenApiResponse(description="The file is over the size limit."),
            415: OpenApiResponse(description="Not multipart/form-data."),
        },
        examples=[
            OpenApiExample(
                "Queued",
                value={
                    **JOB_EXAMPLE,
                    "status": "queued",
                    "progress": {"done": 0, "total": None},
                    "counts": {"created": 0, "updated": 0, "skipped": 0, "refused": 0},
                    "errors": [],
                    "error_count": 0,
                    "unmapped_terms": [],
                    "started": None,
                    "finished": None,
                },
                response_only=True,
                status_codes=["202"],
            )
        ],
    )
    @docstring_with(max_bytes=settings.DIRECTORY_IMPORT_MAX_BYTES)
    def post(self, request):
        """Import an HSDS directory

        Upload an HSDS 3.1 directory to import into your organisation, which owns every record
        imported (multipart/form-data, the file in `file`). The answer is 202 with the import job; a
        Celery worker runs it, and `directory.import.finished` goes to your webhooks when it ends.
        Services are matched by their HSDS `id` (kept as their external id), so importing the same
        file again updates (`on_conflict=update`) or skips, never duplicates. Each record's problems
        are in the job's report, with a JSON pointer or a CSV file, row and column; any error
        refuses the whole import, which is all or nothing for an organisation. Taxonomy terms of
        another taxonomy count only through `taxonomy_mapping`; unmapped ones are reported, never
        guessed. A file that is not a document of its format: 400. Over {max_bytes} bytes: 413,
        refused before it is read. Anything but multipart/form-data: 415.
        """
        media_type = request.content_type.split(";")[0].strip().lower()
        if media_type != "multipart/form-data":
            raise UnsupportedMediaType(
                "Send the file as multipart/form-data, in the field `file`.",
                errors=[{"pointer": "/Content-Type", "detail": "Not multipart/form-data."}],
            )
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = services.max_bytes()
        if length > limit + MULTIPART_SLACK:
            raise PayloadTooLarge(
                f"The upload is {length} bytes; an import takes a file of at most {limit}. "
                "Nothing was read.",
                errors=[{"pointer": "/file", "detail": f"At most {limit} bytes."}],
            )
        data = validated(ImportUploadSerializer, request.data)
        mapping = data.get("taxonomy_mapping")
        upload = data["file"]
        job = services.directory_import_create(
            organisation=request.organisation,
            client_id=request.application.client_id,
            file=upload,
            size=upload.size,
            import_format=_format_of(data),
            dry_run=data["dry_run"],
            on_conflict=data["on_conflict"],
            taxonomy_mapping=services.mapping_parse(mapping.read()) if mapping else None,
        )
        return Response(
            DirectoryImportSerializer(job).data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": f"/api/v1/directory/imports/{job.pk}"},
        )


class DirectoryImportDetailView(APIView):
    required_scopes = READ

    @extend_schema(
        tags=["imports"],
        responses={200: DirectoryImportSerializer},
        examples=[OpenApiExample("Finished", value=JOB_EXAMPLE, response_only=True)],
    )
    def get(self, request, pk):
        """Get an import job

        Status (`queued`, `running`, `succeeded`, `failed`), progress (records done of total),
        counts, and the report: errors (each refusing its organisation's records), warnings (what
        was left out, and why) and unmapped taxonomy terms. Only your own organisation's imports;
        another's is 404 like an unknown id.
        """
        job = visible_or_404(DirectoryImport.objects.filter(organisation=request.organisation), pk)
        return Response(DirectoryImportSerializer(job).data)
