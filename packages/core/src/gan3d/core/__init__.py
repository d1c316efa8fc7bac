"""gan3d.core: the module interfaces, the plugin registry, recipes and the shared machinery.

Importing this package loads no plugin and no heavy dependency; entry points are loaded the first
time the registry is asked for something (``get_registry().names(...)``).
"""

from .hookspecs import hookimpl
from .registry import RegistryError, get_registry

__all__ = ["hookimpl", "get_registry", "RegistryError"]
__version__ = "0.1.0"
