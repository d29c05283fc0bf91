"""Who runs a command: a signed-in person's identity and roles, read once per command."""

from dataclasses import dataclass

ADMIN_ROLE = "系统管理员"


@dataclass(frozen=True)
class Actor:
    id: int
    username: str
    unit_id: int | None
    roles: frozenset[str]
    sees_all: bool = False  # holds a role that sees every instance (office staff, leaders)

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles
