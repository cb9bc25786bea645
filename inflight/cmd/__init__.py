"""Console entry points.

The daemon runs on oslo.service's threading backend. oslo.messaging imports
oslo_service.service, which fixes the backend, so it is chosen here: Python
imports this package before any entry-point module in it.
"""

import warnings

# Libraries import eventlet for the services that run on it, not for us.
warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')

from oslo_service import backend  # noqa: E402

backend.init_backend(backend.BackendType.THREADING)
