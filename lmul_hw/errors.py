"""Errors the command line maps to exit statuses (SPEC §5): ValueError -> 2, these two -> 1 and 3."""


class VerificationFailed(Exception):
    """A verification found mismatches (exit status 1)."""


class ToolError(Exception):
    """An outside tool failed (exit status 3); the message names it and ends with its log's tail."""

    def __init__(self, tool: str, message: str, log: str = "", tail: int = 15):
        lines = [line for line in log.splitlines() if line.strip()][-tail:]
        text = f"{tool} failed: {message}"
        if lines:
            text += "\n" + "\n".join("  | " + line for line in lines)
        super().__init__(text)
        self.tool = tool
