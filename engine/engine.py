"""The engine facade: every command is one transaction; every read answers from plain SQL tables.

`Engine` is assembled from command groups, one module each, all standing on `EngineBase`
(base.py): instances, tasks, approvals (转办, 退回 …), attachments, documents, the directory,
accounts, the console, the designer, pages and timers.
"""

from . import handlers, reconnect  # handlers: registers the generic service-task handlers
from .account_commands import AccountCommands
from .approval_commands import ApprovalCommands
from .attachment_commands import AttachmentCommands
from .console_commands import ConsoleCommands
from .designer_commands import DesignerCommands
from .directory_commands import DirectoryCommands
from .document_commands import DocumentCommands
from .instance_commands import InstanceCommands
from .page_commands import PageCommands
from .task_commands import TaskCommands
from .timers import TimerCommands

__all__ = ["Engine", "handlers"]


@reconnect.retried_calls  # a call that lost its connection before committing runs once more
class Engine(
    ConsoleCommands,  # first: it builds on ApprovalCommands and InstanceCommands
    AccountCommands,
    ApprovalCommands,
    AttachmentCommands,
    DesignerCommands,
    DirectoryCommands,
    DocumentCommands,
    InstanceCommands,
    PageCommands,
    TaskCommands,
    TimerCommands,
):
    """duban's workflow engine: every public method is one command or one read."""
