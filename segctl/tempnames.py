"""Names of the temporary tables and views segctl creates in an engine's connection.

One place for all of them, each with one kind (table, view or registered Arrow table): a
long-lived ``Project`` (a script calling ``run``, ``members``, ``evaluate``... in a row) reuses one
connection, and DuckDB refuses ``CREATE OR REPLACE TEMP TABLE x`` where ``x`` is a view. Two
call sites sharing a name for different kinds of object was issue 14's ``segctl_members`` bug.
"""

from __future__ import annotations

#: Table: person_id plus the memberships of the last evaluation, packed (segctl.packed).
RESULT_TABLE = "segctl_result"
#: View over RESULT_TABLE: person_id plus one boolean column per evaluated segment.
MEMBERS_VIEW = "segctl_members"
#: Table: the person ids of one segment at a committed run (``Project.members``).
RUN_MEMBERS_TABLE = "segctl_run_members"
#: Table: the members of the segment or draft being previewed.
PREVIEW_TABLE = "segctl_preview"
#: View: the suppression file's keys (person ids and lower-cased emails).
SUPPRESSED_VIEW = "segctl_suppressed"
#: Table: the person ids an audience plan has already synced (the dry-run plan).
PLAN_SYNCED_TABLE = "plan_synced"
#: Registered Arrow table: the members staged for an audience (delivery).
NEW_MEMBERS = "segctl_new_members"
#: Registered Arrow table: a Spark evaluation's result, copied into DuckDB.
SPARK_RESULT = "segctl_spark_result"
#: Registered Arrow table: the ranked persons of a lookalike.
LOOKALIKE_IDS = "segctl_lookalike_ids"
#: View: every event row of every source, with its source's index, resolved person and
#: duplicate flag (segctl.sources.views); the ``events`` view reads it.
EVENTS_STAGED_VIEW = "segctl_events_staged"
#: Table: anonymous id -> person id, the links of the sources resolved (segctl.sources.load).
IDENTITY_MAP_TABLE = "segctl_identity_map"
#: Table: the distinct (id, person_id) links of the sources, while they are resolved.
IDENTITY_LINKS = "segctl_identity_links"
#: Table: the persons whose memberships changed against the snapshot (segctl.diff.compute).
CHANGED_TABLE = "changed"
#: Table: the new snapshot rows of a run's changed persons, when the layout keeps removed
#: segments (segctl.state.store).
REPLACED_TABLE = "segctl_replaced"
#: Table: the entries and exits of an evaluation, as (idx, person_id, kind) rows.
RUN_MOVES_TABLE = "run_moves"
#: View: (segment, person_id) of the entries an evaluation found, which a commit records.
RUN_ENTERED_VIEW = "run_entered"
#: View: (segment, person_id) of the exits an evaluation found, which a commit records.
RUN_EXITED_VIEW = "run_exited"
#: A run's entries of persons whose exit a hold of the mass-exit guard still held.
RUN_RETURNED_TABLE = "segctl_run_returned"
#: Table: (segment, person_id) of the segments compared by ``segctl overlap``.
OVERLAP_MEMBERS_TABLE = "overlap_members"
#: Table: the persons an incremental run re-evaluates (segctl.incremental's set D).
INCREMENTAL_PERSONS = "segctl_incremental_persons"
#: Table: the wake-up times an incremental (or full) run computed (segctl.incremental).
INCREMENTAL_WAKE = "segctl_incremental_wake"
#: Table: the ids of the rows of the event files new to an incremental run.
INCREMENTAL_NEW_ROWS = "segctl_incremental_new_rows"
#: Tables: D's rows of each input view during an incremental run, named like the views to
#: shadow them (a temp table comes first in DuckDB's search path), so the plan reads only them.
INCREMENTAL_ROWS = ("events", "persons", "subscriptions")
#: Table: the ``events`` view's rows of the event files new to an incremental run.
INCREMENTAL_NEW_EVENTS = "segctl_incremental_new_events"
#: Table: D's events, from the state's copy and the new files (renamed to shadow ``events``).
INCREMENTAL_EVENTS = "segctl_incremental_events"
#: Table: per person, the hash of their persons and subscriptions rows (segctl.incremental).
INCREMENTAL_ROW_HASHES = "segctl_incremental_row_hashes"
