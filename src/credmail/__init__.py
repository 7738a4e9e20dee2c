"""credmail: answers electronic-register credential requests sent to a school's mailbox."""

__version__ = "0.1.0"
