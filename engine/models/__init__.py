"""All engine tables. Importing this package registers every model on `Base.metadata`."""

from .accounts import ApiToken, SignInThrottle
from .approvals import CarbonCopy, Opinion
from .base import Base
from .definitions import Deployment, DeploymentFile, ProcessVersion
from .directory import CalendarOverride, Role, Unit, User, user_role
from .events import Event, TaskHistory
from .instances import HumanTask, HumanTaskCandidate, MessageSubscription, ProcessInstance, Timer
from .items import TrackedItem
from .notifications import Notification

__all__ = [
    "ApiToken",
    "SignInThrottle",
    "Base",
    "CalendarOverride",
    "CarbonCopy",
    "Deployment",
    "DeploymentFile",
    "Event",
    "HumanTask",
    "HumanTaskCandidate",
    "MessageSubscription",
    "Notification",
    "Opinion",
    "ProcessInstance",
    "ProcessVersion",
    "Role",
    "TaskHistory",
    "Timer",
    "TrackedItem",
    "Unit",
    "User",
    "user_role",
]
