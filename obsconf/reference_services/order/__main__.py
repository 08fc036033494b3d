from obsconf.reference_services.order.app import SERVICE, create_app
from obsconf.reference_services.service import run_service

run_service(SERVICE, 8001, create_app)
