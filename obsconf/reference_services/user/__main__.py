from obsconf.reference_services.service import run_service
from obsconf.reference_services.user.app import SERVICE, create_app

run_service(SERVICE, 8000, create_app)
