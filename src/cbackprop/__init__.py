from cbackprop import reference
from cbackprop.network import Network
