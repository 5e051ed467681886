"""The competition file (`config/competition/<name>.yaml`): files, ids, targets, the task (src/tasks), metrics and
the submission format, checked against the competition's sample submission. Imports src.utils.core and
src.utils.config, and src.tasks.

`src.utils.competition` is also an old import path of experiment folders (src/utils/contract.py): these names stay.
"""

from src.utils.competition.spec import Competition, from_yaml, load, names
from src.utils.config.targets import instantiate

__all__ = ["Competition", "from_yaml", "instantiate", "load", "names"]
