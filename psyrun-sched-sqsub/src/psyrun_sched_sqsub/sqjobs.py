"""Read the table that ``sqjobs`` prints.

sqjobs prints two header lines (the column names, then a rule of dashes under
each column) and one line per job::

      jobid  user queue state ncpus  nodes time command
    ------- ----- ----- ----- ----- ------ ---- -------
        101 alice serial    R     1  node3  42s psyrun:process-0
        102 alice serial   *Q     1      -    - psyrun:merge

Cells may be empty (a queued job has no node), so columns are located by the
dashes under them rather than by splitting on whitespace; lines that are not
job rows (summaries, blank lines) are skipped.
"""

from __future__ import annotations

import re

import attrs
from psyrun.scheduler.base import JobState

_TOKEN = re.compile(r"\S+")
# State codes are one or two letters, with a star for a job waiting on others.
_STATE_CODE = re.compile(r"^\*?[A-Za-z]{1,2}$")


@attrs.frozen
class SqjobsRow:
    """One job as sqjobs lists it."""

    id: str
    #: sqjobs' state code: ``R``, ``Q``, ``*Q``, ``Z``, ``D``, ``C``, ...
    state: str
    user: str | None = None
    #: The last column (the job's name or command).
    name: str | None = None


#: sqjobs state code -> (normalised state, reason).  ``None`` means the job has
#: finished and only the job's own exit record can tell how.
STATE_CODES: dict[str, tuple[JobState | None, str | None]] = {
    "Q": (JobState.QUEUED, None),
    "*Q": (JobState.QUEUED, "waiting for the jobs it depends on"),
    "H": (JobState.QUEUED, "held"),
    "R": (JobState.RUNNING, None),
    "Z": (JobState.RUNNING, "suspended"),
    "S": (JobState.RUNNING, "suspended"),
    "D": (None, "done"),
    "E": (None, "exited"),
    "C": (None, "cancelled"),
}


def interpret_state(code: str) -> tuple[JobState | None, str | None]:
    """Normalised state and reason for a sqjobs state code (``None``: finished)."""
    try:
        return STATE_CODES[code]
    except KeyError:
        return JobState.UNKNOWN, f"sqjobs reports the unknown state {code!r}"


def _columns(header: str, rule: str | None) -> list[tuple[str, int, int]]:
    """(name, start, end) of each column."""
    source = rule if rule is not None else header
    spans = [(m.start(), m.end()) for m in _TOKEN.finditer(source)]
    columns = []
    for start, end in spans:
        names = [m.group() for m in _TOKEN.finditer(header)
                 if m.start() < end and m.end() > start]
        columns.append((" ".join(names).lower(), start, end))
    return columns


def _cell(tokens: list[re.Match[str]], start: int, end: int) -> str | None:
    """The token that overlaps [start, end) most (values may spill out of their column)."""
    best, best_overlap = None, 0
    for token in tokens:
        overlap = min(end, token.end()) - max(start, token.start())
        if overlap > best_overlap:
            best, best_overlap = token.group(), overlap
    return best


def parse_sqjobs(text: str) -> dict[str, SqjobsRow]:
    """The jobs listed in sqjobs' output, by id.

    >>> out = ('  jobid  user queue state ncpus  nodes time command\\n'
    ...        '------- ----- ----- ----- ----- ------ ---- -------\\n'
    ...        '    101 alice serial    R     1  node3  42s a:b\\n'
    ...        '    102 alice serial   *Q     1             a:c\\n')
    >>> {i: r.state for i, r in parse_sqjobs(out).items()}
    {'101': 'R', '102': '*Q'}
    """
    lines = text.splitlines()
    header_at = next((i for i, line in enumerate(lines)
                      if {"jobid", "state"} <= set(line.lower().split())), None)
    if header_at is None:
        return {}
    header = lines[header_at]
    rule = None
    body_from = header_at + 1
    if body_from < len(lines) and set(lines[body_from].strip()) <= {"-", " "} \
            and lines[body_from].strip():
        rule = lines[body_from]
        body_from += 1
    columns = _columns(header, rule)
    by_name = {name: (start, end) for name, start, end in columns}
    state_span = by_name.get("state")
    user_span = by_name.get("user")
    last_start = columns[-1][1] if columns else 0
    rows: dict[str, SqjobsRow] = {}
    for line in lines[body_from:]:
        tokens = list(_TOKEN.finditer(line))
        if not tokens or not tokens[0].group().isdigit():
            continue  # blank lines, summaries ("2460 CPUs total, ...") have no job id
        state = _cell(tokens, *state_span) if state_span else None
        if state is None or not _STATE_CODE.match(state):
            continue  # "0 reserved cpus" and the like
        user = _cell(tokens, *user_span) if user_span else None
        rest = [t for t in tokens if t.end() > last_start]
        name = line[rest[0].start():].strip() if rest and len(columns) > 1 else None
        job_id = tokens[0].group()
        rows[job_id] = SqjobsRow(id=job_id, state=state or "", user=user, name=name)
    return rows
