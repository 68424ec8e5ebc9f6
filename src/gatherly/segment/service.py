"""Segments and marketing lists: CRUD, scope, membership, refresh, explain (SPEC B4, B5, B13).

Two steps, kept apart (reference §3.3):

* **membership** = contacts matching the criteria ∩ the scope. With BU scoping on, a
  business-unit-scoped segment holds only contacts whose owning BU is the segment's
  owning BU; with it off every segment is organization-scoped. Membership is the same for
  everyone; ``refresh`` materialises it in ``segment_member``.
* **what a viewer sees** = membership ∩ the contacts the viewer may read, filtered by the
  access engine at read time; the count a viewer sees is the count of those.

This module is the domain's one door (``__all__``); the work is in small private modules:
``_lists`` (marketing lists), ``_segments`` (segment records), ``_members`` (what a viewer
sees, previews, exports), ``_refresh`` (materialising and explaining membership), ``_bulk``
(bulk actions on chosen contacts) and ``_common`` (scope, criteria checks, counts and
membership writes they share).
"""

from __future__ import annotations

from gatherly.core.csvout import CsvExport
from gatherly.segment._bulk import (
    MAX_BULK,
    ListPlan,
    Selection,
    apply_list_change,
    count_selected,
    export_selection,
    plan_list_change,
    selected_ids,
    writable_lists,
)
from gatherly.segment._common import (
    CONTACT,
    CONTACT_KIND,
    LIST,
    MAX_IDS,
    SEGMENT,
    STATIC_REFUSED,
    MembershipChange,
    count_visible,
    custom_plans,
    effective_scope,
    evaluate_statement,
    may_choose_organization,
    owner_principal,
    parse_criteria,
    reference_names,
    scope_bu,
    scoping_on,
    totals_visible,
)
from gatherly.segment._lists import (
    MAX_IMPORT_ROWS,
    add_to_list,
    count_lists,
    create_list,
    delete_list,
    get_list,
    import_csv,
    list_lists,
    list_members,
    lists_of_contact,
    remove_from_list,
    update_list,
)
from gatherly.segment._members import (
    EXPORT_COLUMNS,
    Members,
    Preview,
    audience_statement,
    export_members,
    iter_visible_list_members,
    iter_visible_members,
    members,
    membership_statement,
    preview,
)
from gatherly.segment._refresh import (
    NodeVerdict,
    RefreshResult,
    ScopeVerdict,
    SegmentCounts,
    SegmentExplanation,
    ViewerVerdict,
    contacts_of_events,
    explain,
    refresh,
    refresh_for,
    segment_counts,
)
from gatherly.segment._segments import (
    UNSET,
    add_static_members,
    count_segments,
    create_segment,
    delete_segment,
    get_segment,
    list_segments,
    recently_refreshed,
    remove_static_members,
    update_segment,
)

__all__ = [
    "CONTACT",
    "CONTACT_KIND",
    "EXPORT_COLUMNS",
    "LIST",
    "MAX_BULK",
    "MAX_IDS",
    "MAX_IMPORT_ROWS",
    "SEGMENT",
    "STATIC_REFUSED",
    "UNSET",
    "CsvExport",
    "ListPlan",
    "Members",
    "MembershipChange",
    "NodeVerdict",
    "Preview",
    "RefreshResult",
    "ScopeVerdict",
    "SegmentCounts",
    "SegmentExplanation",
    "Selection",
    "ViewerVerdict",
    "add_static_members",
    "add_to_list",
    "apply_list_change",
    "audience_statement",
    "contacts_of_events",
    "count_lists",
    "count_segments",
    "count_selected",
    "count_visible",
    "create_list",
    "create_segment",
    "custom_plans",
    "delete_list",
    "delete_segment",
    "effective_scope",
    "evaluate_statement",
    "explain",
    "export_members",
    "export_selection",
    "get_list",
    "get_segment",
    "import_csv",
    "iter_visible_list_members",
    "iter_visible_members",
    "list_lists",
    "list_members",
    "list_segments",
    "lists_of_contact",
    "may_choose_organization",
    "members",
    "membership_statement",
    "owner_principal",
    "parse_criteria",
    "plan_list_change",
    "preview",
    "recently_refreshed",
    "reference_names",
    "refresh",
    "refresh_for",
    "remove_from_list",
    "remove_static_members",
    "scope_bu",
    "scoping_on",
    "segment_counts",
    "selected_ids",
    "totals_visible",
    "update_list",
    "update_segment",
    "writable_lists",
]
