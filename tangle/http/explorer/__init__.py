"""The explorer: a dashboard every node serves at `/` on its API port (static files under
`static/`, plain ES modules, no build step), fed by the node's event stream and read endpoints
and by the views of `_views.py` over what `_timeline.py` remembers."""

from ._document import with_explorer as with_explorer
from ._timeline import Timeline as Timeline
from ._views import Explorer as Explorer
