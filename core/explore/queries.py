"""Read-side queries behind the dashboard pages, by page: ``overview``, ``mapview``, ``groups``
(selections and Compare), ``segment`` (segment detail), ``shoppers``, ``rules``, ``model``, over
``base`` (labels, SQL helpers, lenses and scopes). This module gathers them for older imports."""

from core.explore.base import *  # noqa: F401,F403
from core.explore.base import _cte, _df, _ids, _one  # noqa: F401
from core.explore.groups import *  # noqa: F401,F403
from core.explore.mapview import *  # noqa: F401,F403
from core.explore.model import *  # noqa: F401,F403
from core.explore.overview import *  # noqa: F401,F403
from core.explore.rules import *  # noqa: F401,F403
from core.explore.segment import *  # noqa: F401,F403
from core.explore.shoppers import *  # noqa: F401,F403
