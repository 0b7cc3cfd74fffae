*** Comments ***
Runs the NUCLEO-H743ZI tinyrobust firmware ELF under Renode and checks it through the wire protocol.
Run with Renode's test runner:
    renode-test renode/tinyrobust.robot --variable ELF:/abs/firmware.elf --variable GOLDEN:/abs/golden.json
GOLDEN is written by: python -m tinyrobust.targets.renode golden --qemu-elf QEMU.elf -o golden.json

*** Settings ***
# One emulation for the whole suite: the tests run in order against the same booted firmware.
Suite Setup       Start Firmware
Suite Teardown    Stop Firmware
Resource          ${RENODEKEYWORDS}
Library           ${CURDIR}/tinyrobust_keywords.py

*** Variables ***
${ELF}            ${CURDIR}/../build/nucleo_h743zi/firmware.elf
${GOLDEN}         ${CURDIR}/../build/nucleo_h743zi/golden.json
${PORT}           34561

*** Keywords ***
Start Firmware
    Setup
    # Same platform script the RenodeTarget uses; variables first so its '?=' defaults yield.
    Execute Command           $elf=@${ELF}
    Execute Command           $port=${PORT}
    Execute Command           include @${CURDIR}/nucleo_h743zi.resc
    Start Emulation
    Connect To Firmware       ${PORT}

Stop Firmware
    Disconnect From Firmware
    Teardown

*** Test Cases ***
Firmware Answers Hello With The Exported Model Hash
    Hello Should Match Golden               ${GOLDEN}

Golden Inferences Are Bit Exact
    Golden Infers Should Match              ${GOLDEN}

Profile Reports Every Layer
    Profile Should Cover Every Layer        ${GOLDEN}
