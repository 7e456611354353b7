"""The risk workflow end to end through a client that knows Assurance only by reflection:
business unit -> service -> risk -> assessment -> response -> approval, with an action plan
and a retried create on the way. Exits non-zero on the first unexpected answer.

    python3 risk_workflow.py HOST:PORT   (tokens in ASSURANCE_TOKEN_OWNER, _TRUST, _ADMIN)

Needs `pip install grpcio grpcio-reflection protobuf`; docs/api-risk.md shows it in use.
"""
import os
import sys
import uuid

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reflection_client import ReflectionClient  # noqa: E402

R = "assurance.risk.v1.RiskService"
O = "assurance.risk.v1.OrganizationService"


def main(target):
    admin = os.environ["ASSURANCE_TOKEN_ADMIN"]
    owner = os.environ["ASSURANCE_TOKEN_OWNER"]
    trust = os.environ["ASSURANCE_TOKEN_TRUST"]
    client = ReflectionClient(target, admin)
    services = client.services()
    assert R in services and O in services, services
    run = uuid.uuid4().hex[:8]

    bu = client.call(f"{O}/CreateBusinessUnit", {
        "business_unit_id": f"finance-{run}", "request_id": f"bu-{run}",
        "business_unit": {"display_name": "Finance", "owner": "cfo@example.com"}})
    svc = client.call(f"{O}/CreateService", {
        "service_id": f"ledger-{run}", "request_id": f"svc-{run}",
        "service": {"business_unit": bu["name"], "display_name": "General ledger",
                    "owner": "ledger-team@example.com"}})
    create = {"request_id": f"risk-{run}", "risk": {
        "title": "Ledger admins share one account", "service": svc["name"],
        "threat": "THREAT_INTERNAL", "identification_source": "IDENTIFICATION_SOURCE_AUDIT_FINDING",
        "owner": "risk_owner@example.com"}}
    risk = client.call(f"{R}/CreateRisk", create, token=owner)
    retried = client.call(f"{R}/CreateRisk", create, token=owner)
    assert retried["name"] == risk["name"], "a retried create returns the same risk"
    assessed = client.call(f"{R}/AssessRisk", {"name": risk["name"], "request_id": f"assess-{run}",
        "assessment": {"impact": 4, "likelihood": 4, "control_deficiency": 4,
                       "assessor": "risk_owner@example.com"}}, token=owner)
    assert assessed["status"] == "RISK_STATUS_ASSESSED", assessed
    response = client.call(f"{R}/CreateRiskResponse", {"parent": risk["name"], "request_id": f"resp-{run}",
        "response": {"decision": "RESPONSE_DECISION_MITIGATE",
                     "rationale": "Named admin accounts with MFA"}}, token=owner)
    try:
        client.call(f"{R}/ApproveRiskResponse", {"name": response["name"], "comment": "mine"}, token=owner)
        raise AssertionError("the proposer approved their own response")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.FAILED_PRECONDITION, e
    approve = {"name": response["name"], "comment": "agreed", "request_id": f"approve-{run}"}
    approved = client.call(f"{R}/ApproveRiskResponse", approve, token=trust)
    assert approved["state"] == "APPROVAL_STATE_APPROVED", approved
    again = client.call(f"{R}/ApproveRiskResponse", approve, token=trust)
    assert again["name"] == approved["name"] and again["state"] == approved["state"], again
    plan = client.call(f"{R}/CreateActionPlan", {"parent": risk["name"], "request_id": f"plan-{run}",
        "action_plan": {"title": "Split the admin account", "owner": "risk_owner@example.com"}}, token=owner)
    client.call(f"{R}/CreateActionItem", {"parent": plan["name"], "request_id": f"item-{run}",
        "action_item": {"title": "Create named admin accounts", "owner": "ops@example.com",
                        "due_time": "2027-01-31T00:00:00Z"}}, token=owner)
    final = client.call(f"{R}/GetRisk", {"name": risk["name"]})
    assert final["status"] == "RISK_STATUS_IN_TREATMENT", final
    decisions = client.call(f"{R}/ListDecisions", {"parent": risk["name"]})
    assert len(decisions.get("decisions", [])) >= 2, decisions
    try:
        client.call(f"{R}/GetRisk", {"name": "not-a-name"})
        raise AssertionError("a malformed name was accepted")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
    print(f"risk workflow ok: {risk['name']} {final['status']}")


if __name__ == "__main__":
    main(sys.argv[1])
