"""The README's "workflow in five minutes (API)", step by step, through the Python client that
openapi-python-client generated from the served OpenAPI document (its code unchanged).

Run against a server started with `serve --demo`:

    COSTBRIDGE_URL=http://127.0.0.1:8080 ADMIN=cb_… APPROVER=cb_… python workflow.py

with the generated package (`costbridge_client`) on PYTHONPATH. EXPORT_DIR, when set, is the demo
company's export folder (`./exports/company-1`), checked for the IIF file at the end. Each step
asserts what the README says it answers; the first that does not stops the script with a
message naming the step.
"""

import os
import sys
import time

from costbridge_client import AuthenticatedClient
from costbridge_client.api.audit import list_audit_events
from costbridge_client.api.codes import create_code, list_codes, list_cost_code_lists
from costbridge_client.api.queue import (
    export_items,
    get_export_job,
    list_gl_accounts,
    list_queue_items,
)
from costbridge_client.api.send import send_to_erp, send_to_erp_status
from costbridge_client.models import (
    CreateCode,
    JobState,
    ListQueueItemsFilter,
    Pick,
    SendBody,
    SyncState,
)


def step(name, response, status):
    """The parsed answer of one step, which must have come with `status`."""
    if response.status_code != status:
        sys.exit(f"{name}: expected HTTP {status}, got {response.status_code}: {response.content!r}")
    print(f"ok  {name}: HTTP {status}")
    return response.parsed


def main():
    base = os.environ["COSTBRIDGE_URL"]
    admin = AuthenticatedClient(base_url=base, token=os.environ["ADMIN"])
    approver = AuthenticatedClient(base_url=base, token=os.environ["APPROVER"])
    cid = 1

    lists = step("the admin's lists", list_cost_code_lists.sync_detailed(cid, client=admin), 200)
    erp = next(lst for lst in lists if lst.is_erp_list)
    assert erp.id == 1, f"the ERP list is id 1, not {erp.id}"

    code = step(
        "a new code 01-110 Permits",
        create_code.sync_detailed(
            cid, erp.id, client=admin, body=CreateCode(code="110", description="Permits", parent_id=2)
        ),
        201,
    )
    assert code.full_code == "01-110" and code.sync_status == SyncState.NEW, code

    button = step("Send to ERP's state", send_to_erp_status.sync_detailed(cid, erp.id, client=admin), 200)
    assert button.enabled and button.label == "Send to ERP", button

    sent = step(
        "Send to ERP",
        send_to_erp.sync_detailed(cid, erp.id, client=admin, body=SendBody(list_version=button.list_version)),
        201,
    )
    assert sent.sent_count == button.unsynced_count, sent

    ready = list_queue_items.sync_detailed(
        cid, client=approver, filter_=ListQueueItemsFilter.READY_TO_EXPORT, per_page=5
    )
    items = step("the approver's Ready to Export", ready, 200)
    assert int(ready.headers["total"]) == sent.sent_count and len(items) == min(5, sent.sent_count)
    assert "rel=\"next\"" in ready.headers["link"] or sent.sent_count <= 5

    accounts = step("GL accounts", list_gl_accounts.sync_detailed(cid, client=approver), 200)
    codes = {a.code for a in accounts}
    assert {"4000", "5000"} <= codes, codes

    job = step(
        "Export all with accounts 4000 and 5000",
        export_items.sync_detailed(
            cid, client=approver, body=Pick(gl_income_account="4000", gl_expense_account="5000")
        ),
        202,
    )
    assert job.item_count == sent.sent_count, job

    # The worker runs the job beside the server: wait for it to finish, within a minute.
    deadline = time.monotonic() + 60
    while True:
        status = step("the export job", get_export_job.sync_detailed(cid, job.export_job_id, client=approver), 200)
        if status.status == JobState.DONE:
            break
        if time.monotonic() > deadline:
            sys.exit(f"the export job is still {status.status.value} after a minute: {status}")
        time.sleep(0.2)
    assert status.counts.synced == sent.sent_count and status.counts.failed == 0, status

    export_dir = os.environ.get("EXPORT_DIR")
    if export_dir:
        name = f"costbridge-export-{job.export_job_id}.iif"
        assert name in os.listdir(export_dir), os.listdir(export_dir)
        print(f"ok  the IIF file {name}")

    synced = list_codes.sync_detailed(cid, erp.id, client=admin, sync_status=SyncState.SYNCED, per_page=3)
    page = step("synced codes", synced, 200)
    assert len(page) == 3 and all(c.sync_status == SyncState.SYNCED for c in page), page
    assert int(synced.headers["total"]) >= sent.sent_count

    events = step("the audit log", list_audit_events.sync_detailed(cid, client=admin, per_page=5), 200)
    assert len(events) == 5 and events[0].at >= events[-1].at, events
    print("the five-minute workflow passed through the generated client")


if __name__ == "__main__":
    main()
