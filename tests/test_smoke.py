from tests.conftest import login


def test_agent_logs_in_and_sees_home(client, make_user):
    make_user(agent_no="10001", name="吴军")
    response = login(client, "10001")
    assert response.status_code == 302
    page = client.get("/")
    assert page.status_code == 200
    assert "吴军" in page.get_data(as_text=True)


def test_home_shows_ones_team_position_and_team_leads(client, make_user, make_team, make_position):
    lead = make_user(agent_no="20001", name="李组长")
    team = make_team("一组", leads=[lead])
    position = make_position("电话客服")
    make_user(agent_no="10001", name="吴军", team=team, position=position)
    login(client, "10001")
    html = client.get("/").get_data(as_text=True)
    assert "一组" in html and "电话客服" in html and "李组长" in html
    # Another team's member sees their own lead, not this one (names are not kept across).
    other_lead = make_user(agent_no="20002", name="赵组长")
    make_user(agent_no="10002", name="王芳", team=make_team("二组", leads=[other_lead]))
    other = client.application.test_client()
    login(other, "10002")
    html = other.get("/").get_data(as_text=True)
    assert "二组" in html and "赵组长" in html and "李组长" not in html
