from tests.conftest import login


def test_agent_logs_in_and_sees_home(client, make_user):
    make_user(agent_no="10001", name="吴军")
    response = login(client, "10001")
    assert response.status_code == 302
    page = client.get("/")
    assert page.status_code == 200
    assert "吴军" in page.get_data(as_text=True)
