"""All engine tables. Importing this package registers every model on `Base.metadata`."""

from .accounts import ApiToken, Setting, SignInThrottle
from .approvals import CarbonCopy, Opinion
from .attachments import Attachment
from .base import Base
from .definitions import Deployment, DeploymentFile, ProcessVersion
from .designs import ProcessDraft
from .directory import CalendarOverride, Role, Unit, User, user_role
from .documents import Document
from .drafts import TaskDraft
from .events import Event, TaskHistory
from .instances import HumanTask, HumanTaskCandidate, MessageSubscription, ProcessInstance, Timer
from .items import TrackedItem
from .notifications import Notification
from .operations import WorkerHeartbeat

__all__ = [
    "ApiToken",
    "Attachment",
    "Setting",
    "SignInThrottle",
    "Base",
    "CalendarOverride",
    "CarbonCopy",
    "Deployment",
    "DeploymentFile",
    "Document",
    "Event",
    "HumanTask",
    "HumanTaskCandidate",
    "MessageSubscription",
    "Notification",
    "Opinion",
    "ProcessDraft",
    "ProcessInstance",
    "ProcessVersion",
    "Role",
    "TaskDraft",
    "TaskHistory",
    "Timer",
    "TrackedItem",
    "Unit",
    "User",
    "WorkerHeartbeat",
    "user_role",
]
