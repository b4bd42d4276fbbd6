"""What each supported tool's export looks like, as a source mapping (SPEC 1, presets).

A preset fills the keys a user would otherwise write: ``columns`` (canonical name -> the
export's column, or a list of candidates of which the first one present in the data is
read), ``anonymous_id``, ``timestamp_unit`` and ``dedupe_on``. Keys written beside a preset
override it. The mappings follow each tool's documented export (docs/data.md shows them):

- posthog: the events export (batch export / CSV download): ``uuid``, ``event``,
  ``properties`` (a JSON object), ``distinct_id``, ``person_id`` (the resolved person),
  ``timestamp`` (ISO-8601).
- segment / rudderstack: the warehouse tables (``tracks``, ``identifies``: snake_case
  ``user_id``, ``anonymous_id``, ``id``, ``timestamp``) and Segment's raw JSON archive
  (camelCase ``userId``, ``anonymousId``, ``messageId``, ``timestamp``).
- amplitude: the Export API's ``export_*.json.gz`` lines: ``user_id``, ``device_id``,
  ``event_type``, ``event_time`` (UTC text), ``event_properties``, ``user_properties``,
  ``$insert_id``.
- mixpanel: the raw export API lines: ``event`` and ``properties`` holding ``time`` (epoch
  seconds), ``distinct_id``, ``$user_id`` (simplified ID merge), ``$device_id`` and
  ``$insert_id``; a row's person is its ``$user_id``, else its ``distinct_id`` unless that
  names its device.
- ga4: the BigQuery export (``events_YYYYMMDD`` as Parquet or JSON): ``event_name``,
  ``event_timestamp`` (microseconds), ``user_id``, ``user_pseudo_id``, ``event_params``
  (key/value records).
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: A column as a preset names it: one column, or candidates (the first present is read).
Candidates = tuple[str, ...]


@dataclass(frozen=True)
class Preset:
    """One role's mapping of a tool's export."""

    columns: dict[str, Candidates] = field(default_factory=dict)
    anonymous_id: Candidates = ()
    timestamp_unit: str | None = None
    dedupe_on: Candidates = ()
    latest_by: Candidates = ()
    #: The person id is the first candidate with a value on each row (not the first one the
    #: export holds anywhere), and a value naming the row's device is no person: Mixpanel's
    #: ``distinct_id`` is the user on rows without ``$user_id`` (server-side events), and
    #: the device on anonymous ones (``$device:<id>``, or the ``$device_id`` itself).
    person_per_row: bool = False


_SEGMENT_EVENTS = Preset(
    columns={
        "person_id": ("user_id", "userId"),
        "event": ("event",),
        "timestamp": ("timestamp", "received_at", "receivedAt"),
    },
    anonymous_id=("anonymous_id", "anonymousId"),
    dedupe_on=("id", "messageId", "message_id"),
)
_SEGMENT_PERSONS = Preset(
    columns={"person_id": ("user_id", "userId")},
    latest_by=("timestamp", "received_at", "receivedAt"),
)
_SEGMENT_IDENTITIES = Preset(
    columns={"id": ("anonymous_id", "anonymousId"), "person_id": ("user_id", "userId")},
)

#: preset name -> role -> mapping. A role a preset does not list takes no preset.
PRESETS: dict[str, dict[str, Preset]] = {
    "posthog": {
        "events": Preset(
            columns={
                "person_id": ("person_id", "distinct_id"),
                "event": ("event",),
                "timestamp": ("timestamp",),
            },
            anonymous_id=("distinct_id",),
            dedupe_on=("uuid",),
        ),
    },
    "segment": {
        "events": _SEGMENT_EVENTS,
        "persons": _SEGMENT_PERSONS,
        "identities": _SEGMENT_IDENTITIES,
    },
    "rudderstack": {
        "events": _SEGMENT_EVENTS,
        "persons": _SEGMENT_PERSONS,
        "identities": _SEGMENT_IDENTITIES,
    },
    "amplitude": {
        "events": Preset(
            columns={
                "person_id": ("user_id",),
                "event": ("event_type",),
                "timestamp": ("event_time",),
            },
            anonymous_id=("device_id",),
            dedupe_on=("$insert_id",),
        ),
    },
    "mixpanel": {
        "events": Preset(
            columns={
                "person_id": ("properties.$user_id", "properties.distinct_id"),
                "event": ("event",),
                "timestamp": ("properties.time",),
            },
            anonymous_id=("properties.$device_id", "properties.distinct_id"),
            timestamp_unit="s",
            dedupe_on=("properties.$insert_id",),
            person_per_row=True,
        ),
    },
    "ga4": {
        "events": Preset(
            columns={
                "person_id": ("user_id",),
                "event": ("event_name",),
                "timestamp": ("event_timestamp",),
            },
            anonymous_id=("user_pseudo_id",),
            timestamp_unit="us",
        ),
    },
}
