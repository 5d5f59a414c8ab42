"""Identity step, subject selection: keep the rows of one person (main, all, or a person_id)."""

from __future__ import annotations

def select_subject(df, subject: str | int = "main"):
    """Keep one person's rows.

    Args:
        df: native rows with `person_id`.
        subject: "all" (every row, unchanged), "main" (person 0, the person with the most frames; an empty frame
            when nobody was identified), or a person_id (int, or a digit string as the CLI passes it).

    Raises:
        ValueError: an unknown subject value, or a person_id that is not in `df` (the message lists those that are).
    """
    if subject == "all":
        return df
    if subject == "main":
        target = 0
    else:
        try:
            target = int(subject)
        except (TypeError, ValueError):
            raise ValueError(f"subject must be 'main', 'all' or a person_id (0, 1, ...), got {subject!r}") from None
    pid = df["person_id"].astype("Int64")
    if subject != "main" and not (pid == target).any():
        known = sorted(int(p) for p in pid.dropna().unique() if p >= 0)
        persons = ", ".join(map(str, known)) or "none"
        raise ValueError(f"person_id {target} is not in this recording; persons: {persons}")
    return df[(pid == target).fillna(False).to_numpy()]
