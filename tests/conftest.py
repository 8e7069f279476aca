from tests.cluster_fixtures import *  # noqa: F403
from tests.db_fixtures import *  # noqa: F403
from tests.gateway_fixtures import *  # noqa: F403
from tests.redis_fixtures import *  # noqa: F403
