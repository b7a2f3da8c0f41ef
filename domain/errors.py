"""Domain errors: every refusal names the field and the rule it broke."""

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    """One broken rule on one field (``row`` is set for file imports)."""

    field: str
    rule: str
    message: str
    row: int | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"field": self.field, "rule": self.rule, "message": self.message}
        if self.row is not None:
            out["row"] = self.row
        return out


class DomainError(Exception):
    """Base of all domain refusals."""

    title = "Domain rule broken"

    def __init__(self, message: str, problems: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = list(problems or [])


class InvalidInputError(DomainError):
    """Input breaks a validation rule; nothing was changed."""

    title = "Invalid input"

    def __init__(self, problems: list[FieldProblem], message: str | None = None) -> None:
        first = problems[0] if problems else None
        super().__init__(
            message or (f"{first.field}: {first.message}" if first else "invalid input"), problems
        )


class InvalidCreditCodeError(InvalidInputError):
    """A unified social credit code (统一社会信用代码) fails GB 32100-2015."""


class PermissionDeniedError(DomainError):
    """The actor's role or department does not allow the action."""

    title = "Forbidden"


def problem(field: str, rule: str, message: str) -> InvalidInputError:
    """Shorthand for a single-field refusal."""
    return InvalidInputError([FieldProblem(field, rule, message)])
