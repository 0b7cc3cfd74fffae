/* main.c - evaluation firmware entry: bring the board up, then answer protocol frames forever. */
#include "tr_app.h"
#include "tr_board.h"

int main(void)
{
    tr_board_init();
    tr_app_serve_forever();
    return 0;
}
