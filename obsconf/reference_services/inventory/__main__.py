from obsconf.reference_services.inventory.app import SERVICE, create_app
from obsconf.reference_services.service import run_service

run_service(SERVICE, 8002, create_app)
