"""kill -9 of the server under load, then a restart: no completion the server acknowledged (200)
is lost or doubled, and no instance is left stuck."""

from tests.faults.support import (
    USERS,
    Server,
    Tally,
    assert_walkable,
    clients,
    completions,
    open_tasks,
    prepare,
    task_states,
    wait_until,
)

INSTANCES = 30  # two steps each: 60 completions to share among four people
KILLS = 2


def test_killing_the_server_loses_and_doubles_no_acknowledged_completion(
    engine, deploy, db_url, tmp_path
) -> None:
    prepare(engine, deploy)
    instance_ids = [engine.start("two_steps")["id"] for _ in range(INSTANCES)]
    tally = Tally()

    with Server(db_url, tmp_path / "server.log") as server:
        server.start()
        tokens = [server.token(user) for user in USERS]
        with clients(server.base, tokens, tally):
            for kill in range(1, KILLS + 1):
                wait_until(
                    lambda k=kill: len(tally.acknowledged) >= 15 * k, 60, "completions under load"
                )
                server.kill()  # mid-load: requests in flight lose their connection
                server.start()
            wait_until(lambda: open_tasks(engine) == 0, 90, "the clients to finish every task")

    assert tally.server_errors() == []
    assert tally.unanswered > 0  # the kills did cut requests off
    counted, states = completions(engine), task_states(engine)
    assert len(tally.acknowledged) == len(set(tally.acknowledged))  # never acknowledged twice
    for task_id in tally.acknowledged:
        assert (states[task_id], counted[task_id]) == ("completed", 1), task_id
    assert_walkable(engine, instance_ids)
