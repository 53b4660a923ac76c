"""Organizations: as the signed-in user, and as an admin with the service key."""

import uuid

import pytest
from conftest import PASSWORD, SERVICE_KEY, new_email

from derp_client import DerpClient, DerpError, Member, Org, OrgMembership


def slug() -> str:
    return f"acme-{uuid.uuid4().hex[:8]}"


async def user(derp):
    email = new_email()
    result = await derp.auth.sign_up(email=email, password=PASSWORD)
    return result.user, result.tokens


async def test_org_lifecycle_as_users(derp):
    owner, owner_tokens = await user(derp)
    other, other_tokens = await user(derp)
    s = slug()
    org = await derp.auth.create_org(name="Acme Inc", slug=s, access_token=owner_tokens.access_token)
    assert isinstance(org, Org) and org.slug == s and org.name == "Acme Inc" and org.id

    with pytest.raises(DerpError) as e:
        await derp.auth.create_org(name="Again", slug=s, access_token=other_tokens.access_token)
    assert (e.value.status, e.value.code) == (409, "org_exists")
    with pytest.raises(DerpError) as e:
        await derp.auth.create_org(name="Bad", slug="Not A Slug!", access_token=owner_tokens.access_token)
    assert (e.value.status, e.value.code) == (400, "invalid_request")

    member = await derp.auth.add_org_member(org_id=org.id, email=other.email, access_token=owner_tokens.access_token)
    assert isinstance(member, Member) and member.user_id == other.id and member.role == "member"
    with pytest.raises(DerpError) as e:
        await derp.auth.add_org_member(org_id=org.id, user_id=other.id, access_token=owner_tokens.access_token)
    assert (e.value.status, e.value.code) == (409, "member_exists")
    # A plain member may not add people.
    with pytest.raises(DerpError) as e:
        await derp.auth.add_org_member(org_id=org.id, email=new_email(), access_token=other_tokens.access_token)
    assert e.value.status in (403, 404)

    orgs = await derp.auth.list_orgs(access_token=other_tokens.access_token)
    assert [(m.org.id, m.role) for m in orgs] == [(org.id, "member")]
    assert all(isinstance(m, OrgMembership) for m in orgs)
    members = await derp.auth.list_org_members(org.id, access_token=owner_tokens.access_token)
    assert {(m.user_id, m.role) for m in members} == {(owner.id, "owner"), (other.id, "member")}

    promoted = await derp.auth.update_org_member(org_id=org.id, user_id=other.id, role="admin", access_token=owner_tokens.access_token)
    assert promoted.role == "admin"

    with pytest.raises(DerpError) as e:
        await derp.auth.remove_org_member(org_id=org.id, user_id=owner.id, access_token=owner_tokens.access_token)
    assert (e.value.status, e.value.code) == (409, "last_owner")
    assert await derp.auth.remove_org_member(org_id=org.id, user_id=other.id, access_token=owner_tokens.access_token) is True
    with pytest.raises(DerpError) as e:
        await derp.auth.remove_org_member(org_id=org.id, user_id=other.id, access_token=owner_tokens.access_token)
    assert (e.value.status, e.value.code) == (404, "not_found")
    assert await derp.auth.list_orgs(access_token=other_tokens.access_token) == []


async def test_set_active_org_puts_the_org_in_the_token(derp):
    owner, tokens = await user(derp)
    org = await derp.auth.create_org(name="Active", slug=slug(), access_token=tokens.access_token)
    session = await derp.auth.authenticate({"authorization": f"Bearer {tokens.access_token}"})
    # The SessionInfo from authenticate carries its token: usable as access_token.
    new = await derp.auth.set_active_org(access_token=session, org_id=org.id)
    active = await derp.auth.verify_access_token(new.access_token)
    assert (active.org_id, active.org_role) == (org.id, "owner")
    assert active.session_id == session.session_id
    # Kept across a refresh.
    refreshed = await derp.auth.refresh_token(new.refresh_token)
    assert (await derp.auth.verify_access_token(refreshed.access_token)).org_id == org.id
    cleared = await derp.auth.set_active_org(access_token=refreshed.access_token, org_id=None)
    assert (await derp.auth.verify_access_token(cleared.access_token)).org_id is None

    stranger, stranger_tokens = await user(derp)
    with pytest.raises(DerpError) as e:
        await derp.auth.set_active_org(access_token=stranger_tokens.access_token, org_id=org.id)
    assert e.value.status in (403, 404)


async def test_admin_calls_with_the_service_key(derp_server):
    async with DerpClient(derp_server.url, service_key=SERVICE_KEY) as admin:
        owner, _ = await user(admin)
        other, _ = await user(admin)
        org = await admin.auth.create_org(name="By admin", slug=slug(), creator_id=owner.id)
        await admin.auth.add_org_member(org_id=org.id, user_id=other.id, role="admin")
        orgs = await admin.auth.list_orgs(user_id=other.id)
        assert [(m.org.id, m.role) for m in orgs] == [(org.id, "admin")]
        assert await admin.auth.remove_org_member(org_id=org.id, user_id=other.id)
        assert await admin.auth.list_orgs(user_id=other.id) == []
    async with DerpClient(derp_server.url) as plain:
        with pytest.raises(ValueError):
            await plain.auth.create_org(name="x", slug=slug(), creator_id=owner.id)
    async with DerpClient(derp_server.url, service_key="wrong-key-wrong-key-wrong-key-wrong") as wrong:
        with pytest.raises(DerpError) as e:
            await wrong.auth.create_org(name="x", slug=slug(), creator_id=owner.id)
        assert e.value.status in (401, 403)
