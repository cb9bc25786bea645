"""What the prober knows of the cloud: its services, where they are read
from, and by which prober each is probed."""
