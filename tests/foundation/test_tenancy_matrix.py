"""Two centers and two courts on one server (issue 10): every route of the OpenAPI document and every Socket.IO
event, for every staff actor of the OTHER tenants, against center A's objects (its case, session, invite,
recordings, and its application sent to court 1). Nobody reaches what is not theirs: 0 unauthorized successes.
Request bodies are generated from the OpenAPI schemas, so the object check — not a validation error — is what
stops each request. Lists (no object in the path) are checked for leaks of A's data instead, and creations with no
object (courts and centers, above every tenant) must be refused to every role the permission table does not name.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from mediation import accounts, cases, sessions
from mediation.db import utcnow
from mediation.models import Center
from mediation.permissions import TABLE, Action
from mediation.recording_records import Recording
from signaling.app import event_handlers
from signaling.client import ProtocolError, SessionClient
from tests.conftest import PASSWORD, World
from tests.court.helpers import COURT, http_status, party_sign, sealed

COURT_B = "court-chengdong"
ACTIONS = {a.value for a in Action}
OTHERS = {"mediator_b": "mediator", "clerk_b": "intake_clerk", "admin_b": "admin", "psych_b": "staff_psychologist",
          "judge_b": "court_judge"}


def example(schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    """A minimal valid instance of a JSON schema (pydantic's output: $ref, anyOf, enums, bounds)."""
    if "$ref" in schema:
        return example(defs[schema["$ref"].rsplit("/", 1)[1]], defs)
    if "anyOf" in schema:
        return example(next(s for s in schema["anyOf"] if s.get("type") != "null"), defs)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    t = schema.get("type")
    if t == "object":
        props = schema.get("properties", {})
        return {k: example(props[k], defs) for k in schema.get("required", [])}
    if t == "array":
        return [example(schema.get("items", {}), defs) for _ in range(schema.get("minItems", 0))]
    if t == "integer":
        return max(1, schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1))
    if t == "number":
        return 1.0
    if t == "boolean":
        return False
    if schema.get("format") == "date-time":
        return utcnow().isoformat()
    if "pattern" in schema:
        return "1" * schema.get("minLength", 6)
    n = max(4, schema.get("minLength", 1))
    return "x" * (n + (-n) % 4)  # also valid base64 (document uploads)


async def _tenant_b(world: World) -> tuple[dict[str, SessionClient], str, int]:
    """Center B with staff of every role, its own case and session; a judge of court 2."""
    async with world.services.db.session() as s:
        center = Center(code="QH-CD", name="城东区社会治理综合服务中心", address="西宁市城东区")
        s.add(center)
        await s.flush()
        users = {}
        for name, role in OTHERS.items():
            users[name] = await accounts.create_user(s, center, username=name, password=PASSWORD, role=role,
                                                     display_name=name, actor="test",
                                                     court_id=COURT_B if role == "court_judge" else None)
        case = await cases.create_case(s, center=center, title="城东劳资纠纷", category="wages", channel="walk_in",
                                       actor="test", people=[cases.PersonIn("A", "钱一"), cases.PersonIn("B", "孙二")])
        sess, _ = await sessions.schedule(s, case, host_id=users["mediator_b"].id, at=utcnow(), actor="test")
    clients = {}
    for name in OTHERS:
        c = world.client()
        await c.login(name, PASSWORD)
        clients[name] = c
    return clients, case.code, sess.id


async def _center_a_objects(world: World) -> dict[str, Any]:
    """Center A's case goes all the way to court 1: sealed, applied for, submitted. Two recordings: the joint one
    and a privileged caucus recording (R9)."""
    m, a, b, _ = await sealed(world)
    judge = await world.staff("judge", session=False)
    mh = await world.staff("mediator", session=False)
    app = (await mh.api("POST", f"/api/cases/{world.case_code}/application", {"court_id": COURT}))["application"]
    await party_sign(a, "application")
    assert (await party_sign(b, "application"))["status"] == "submitted"
    async with world.services.db.session() as s:
        for rid, privileged in (("rec-joint-a", False), ("rec-caucus-a", True)):
            s.add(Recording(id=rid, session_id=str(world.session_id), case_code=world.case_code,
                            privileged=privileged, status="stopped", data_key_id="k", duration_ms=1000,
                            record_type="caucus_recording" if privileged else "mediation_recording"))
    return {"app": app["id"], "judge": judge, "mediator": mh, "m": m}


def _fill(path: str, world: World, app_id: int, recording: str) -> str:
    obj = app_id if path.startswith("/api/court/applications/") else world.session_id
    if path.startswith("/api/recordings/"):
        return path.replace("{id}", recording)
    return (path.replace("{code}", world.case_code).replace("{id}", str(obj))
            .replace("{invite}", str(world.invite_ids["A"])))


async def test_no_actor_of_another_tenant_reaches_center_a(world: World) -> None:
    a_objects = await _center_a_objects(world)
    others, b_code, b_session = await _tenant_b(world)
    doc = await a_objects["mediator"].api("GET", "/api/openapi.json")
    defs = doc.get("components", {}).get("schemas", {})
    sensitive = [world.case_code, "张三", "李四", "13800000001"]
    cells = successes = 0
    statuses: dict[int, int] = {}
    failures: list[tuple[str, str, str, int]] = []
    for path, ops in sorted(doc["paths"].items()):
        for method, op in sorted(ops.items()):
            if "security" not in op or path.startswith("/api/auth/"):
                continue  # public routes (join, login) and the login's own routes
            body = None
            if "requestBody" in op:
                schema = op["requestBody"]["content"]["application/json"]["schema"]
                body = example(schema, {**defs, **schema.get("$defs", {})})
            targets = ["rec-joint-a", "rec-caucus-a"] if "/api/recordings/" in path else [""]
            for name, rec in itertools.product(others, targets):
                url = _fill(path, world, a_objects["app"], rec)
                if "{" not in path:  # no object in the path: the answer must not carry center A's data
                    if method != "get":
                        # creating in one's own tenant is legitimate (covered by the object cells); what is
                        # above tenants (courts, centers: the system administrator's) or not the role's is refused
                        permission = op.get("x-permission", "")
                        if permission in ACTIONS and OTHERS[name] not in TABLE[Action(permission)]:
                            status, _ = await http_status(others[name], method.upper(), url, body)
                            statuses[status] = statuses.get(status, 0) + 1
                            cells += 1
                            if status < 300:
                                successes += 1
                                failures.append((method, url, name, status))
                        continue
                    status, data = await http_status(others[name], "GET", url)
                    text = json.dumps(data, ensure_ascii=False) if isinstance(data, dict) else ""
                    leaked = [x for x in sensitive if x in text]
                    cells += 1
                    if leaked:
                        failures.append((method, url, name, status))
                    continue
                status, _ = await http_status(others[name], method.upper(), url + "?reason=t", body)
                statuses[status] = statuses.get(status, 0) + 1
                cells += 1
                if status < 300:
                    successes += 1
                    failures.append((method, url, name, status))
    # the court the case was sent to: never the privileged caucus recording (R9), neither listed nor exported
    judge = a_objects["judge"]
    status, listed = await http_status(judge, "GET", f"/api/cases/{world.case_code}/recordings")
    assert status == 200 and [r["id"] for r in listed["recordings"]] == ["rec-joint-a"]
    assert (await http_status(judge, "GET", "/api/recordings/rec-caucus-a/export?reason=review"))[0] == 404
    # Socket.IO: no staff of another tenant joins center A's session; so no event of ours reaches them
    events = sorted(event_handlers())
    refused = 0
    for name in ("mediator_b", "psych_b", "judge_b", "admin_b", "clerk_b"):
        c = world.client()
        await c.login(name, PASSWORD)
        try:
            await c.join_staff(world.session_id)
        except ProtocolError as e:
            assert e.code in ("forbidden", "session_not_found"), e.code
            refused += 1
    assert refused == 5
    cells += refused * len(events)
    print(f"tenancy matrix: {cells} cells ({len(others)} actors of center B and court 2 x routes x objects, "
          f"and x creating routes their role may not use, such as courts and centers, "
          f"+ {refused} refused joins x {len(events)} events), unauthorized successes: {successes}; "
          f"object cells by status: {dict(sorted(statuses.items()))}")
    assert failures == []
    assert successes == 0
    # positive controls: the same routes work for the owners (the matrix is not refusing everything)
    assert (await http_status(a_objects["mediator"], "GET", f"/api/cases/{world.case_code}"))[0] == 200
    assert (await http_status(judge, "GET", f"/api/court/applications/{a_objects['app']}"))[0] == 200
    assert (await http_status(others["mediator_b"], "GET", f"/api/cases/{b_code}"))[0] == 200
    assert (await http_status(others["mediator_b"], "GET", f"/api/sessions/{b_session}"))[0] == 200


async def test_only_the_system_administrator_creates_judges(world: World) -> None:
    admin = await world.staff("admin", session=False)
    body = {"username": "judge-new", "password": "long-enough-password", "role": "court_judge",
            "display_name": "新法官", "court_id": COURT}
    status, err = await http_status(admin, "POST", "/api/users", body)
    assert status == 403 and err["error"]["code"] == "forbidden"
    async with world.services.db.session() as s:
        center = await s.get(Center, 1)
        assert center
        await accounts.create_user(s, center, username="sysadmin", password=PASSWORD, role="system_admin",
                                   display_name="平台管理员", actor="test")
    sysadmin = world.client()
    await sysadmin.login("sysadmin", PASSWORD)
    status, err = await http_status(sysadmin, "POST", "/api/users", {**body, "court_id": "no-such-court"})
    assert status == 404 and err["error"]["code"] == "no_court"
    assert (await http_status(sysadmin, "POST", "/api/users", body))[0] == 200
    status, err = await http_status(admin, "POST", "/api/users", {**body, "username": "clerk-x",
                                                                   "role": "intake_clerk"})
    assert status == 422 and err["error"]["code"] == "bad_court"  # only judges belong to a court


async def test_audit_reads_are_scoped_to_the_admins_center(world: World) -> None:
    others, _, _ = await _tenant_b(world)
    status, data = await http_status(others["admin_b"], "GET", f"/api/audit?subject=case:{world.case_code}")
    assert status == 200 and data["entries"] == []
    status, data = await http_status(others["admin_b"], "GET", "/api/audit")
    assert status == 200 and world.case_code not in json.dumps(data, ensure_ascii=False)
    admin = await world.staff("admin", session=False)
    status, data = await http_status(admin, "GET", f"/api/audit?subject=case:{world.case_code}")
    assert status == 200 and data["entries"]


async def test_a_reissued_link_starts_over_and_only_the_host_reissues(world: World) -> None:
    m, a, _ = await world.trio()
    judge = await world.staff("judge", session=False)
    path = f"/api/sessions/{world.session_id}/invites/{world.invite_ids['A']}/reissue"
    assert (await http_status(judge, "POST", path))[0] == 404  # a judge who is not the host
    co = await world.staff("mediator2", session=False)
    assert (await http_status(co, "POST", path))[0] == 404  # nor a co-mediator
    status, out = await http_status(await world.staff("mediator", session=False), "POST", path)
    assert status == 200
    await a.wait_event("disconnect")
    new = world.client()
    await new.join_invite(out["invite"]["link"].split("#", 1)[1])
    await new.wait(lambda c: c.state.get("you", {}).get("admitted") is False)
    assert new.state["you"]["readiness"]["identity"] is False  # identity again, then admission again
    assert new.state["participants"] == []
    await m.wait(lambda c: any(p["id"] == new.pid for p in c.state.get("lobby", [])))
