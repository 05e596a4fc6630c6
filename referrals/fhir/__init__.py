"""The HL7 FHIR R4 facade (`/fhir/r4`), following the Gravity Project's SDOH Clinical Care guide:
a second door into the same referrals. Every read and write goes through referrals.selectors and
referrals.services (and the partner directory's selectors), so tenancy, consent, encryption,
the personal-data gate, events and audit are the REST API's own; this package only translates.
See docs/FHIR.md."""
